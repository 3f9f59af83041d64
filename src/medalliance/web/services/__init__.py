"""The service layer of the web client: what a page or an API call does, one function each."""
