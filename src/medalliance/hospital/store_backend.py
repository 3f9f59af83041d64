"""The hospital store's tables, on SQLite or PostgreSQL (`medalliance.sql_connection`).

Resources are JSON (JSONB on PostgreSQL) keyed by type and id, with their search index rows and
the application's own records beside them, so one transaction covers all three. SQLite also gets
`secure_delete` (deleted identities do not linger in free pages) and foreign keys (search rows go
with their resource).
"""

from __future__ import annotations

from medalliance.database_url import DatabaseUrl
from medalliance.sql_connection import SqlConnection, open_sql

Backend = SqlConnection

_TABLES = """
CREATE TABLE IF NOT EXISTS fhir_resource (
    resource_type {text} NOT NULL, id {text} NOT NULL, version_id INTEGER NOT NULL,
    last_updated {text} NOT NULL, source {text} NOT NULL, content {json} NOT NULL,
    PRIMARY KEY (resource_type, id));
CREATE INDEX IF NOT EXISTS fhir_resource_source ON fhir_resource (source);
CREATE TABLE IF NOT EXISTS fhir_search (
    resource_type {text} NOT NULL, resource_id {text} NOT NULL, param {text} NOT NULL,
    value {text} NOT NULL, value_high {text},
    FOREIGN KEY (resource_type, resource_id) REFERENCES fhir_resource (resource_type, id)
        ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS fhir_search_lookup ON fhir_search (resource_type, param, value);
CREATE INDEX IF NOT EXISTS fhir_search_owner ON fhir_search (resource_type, resource_id);
CREATE TABLE IF NOT EXISTS app_record (
    kind {text} NOT NULL, key {text} NOT NULL, document {json} NOT NULL,
    PRIMARY KEY (kind, key));
"""


def connect(url: DatabaseUrl, schema: str) -> Backend:
    """A connected backend with the store's tables created (PostgreSQL schema: `schema`).
    Raises `Unavailable` when the database cannot be reached or opened."""
    return open_sql(
        url,
        store="the hospital store",
        tables=_TABLES,
        schema=(schema,),
        pragmas=("secure_delete=ON", "foreign_keys=ON"),
    )
