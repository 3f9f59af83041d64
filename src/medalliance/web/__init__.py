"""The web client of the alliance (issue 13): pages per role, the JSON API and FHIR R4 REST.

A shell like `cli/`: routes parse requests and call `app/` (style.md §9). docs/web.md describes
running it, accounts, the security model and the API.
"""
