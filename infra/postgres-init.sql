-- Run once by the postgres image on an empty data directory
-- (mounted into /docker-entrypoint-initdb.d/), by psql as POSTGRES_USER
-- connected to POSTGRES_DB. POSTGRES_USER owns the database and, through
-- `journeylens db upgrade` (DATABASE_MIGRATION_URL), every table.
--
-- Why a separate app role: PostgreSQL row-level security does not apply to
-- superusers, to roles with BYPASSRLS, or to a table's owner (unless the table
-- is FORCE ROW LEVEL SECURITY). If the web app and worker connected as the
-- owner, the tenant-isolation policies would silently not run. So they connect
-- (DATABASE_URL) as journeylens_app: a plain LOGIN role that is not a
-- superuser, cannot bypass RLS and owns nothing -- every row it reads or
-- writes passes through the tenant policies.
--
-- The password comes from the container's JOURNEYLENS_APP_PASSWORD
-- (psql's \getenv; the script stops with an error if it is unset).

\getenv app_password JOURNEYLENS_APP_PASSWORD

CREATE ROLE journeylens_app
    LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;

GRANT CONNECT ON DATABASE :"DBNAME" TO journeylens_app;
GRANT USAGE ON SCHEMA public TO journeylens_app;

-- Tables and sequences the owner creates later (migrations) are usable by the
-- app role, never owned by it. Migrations may grant explicitly as well.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO journeylens_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO journeylens_app;
