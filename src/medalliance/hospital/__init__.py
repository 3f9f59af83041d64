"""The hospital's own systems at the alliance boundary, in HL7 FHIR R4 (architecture §2).

A clinical store of FHIR resources (SQLite or PostgreSQL), bundle import and export, and the
referral bundles (HL7 BSeR) that travel sealed between hospitals. Nothing here reaches the chain:
the chain sees pseudonyms, visit numbers and hashes (docs/fhir.md).
"""
