-- The pipeline's own database beside Prefect's, on the same PostgreSQL server.
CREATE USER digest WITH PASSWORD 'digest';
CREATE DATABASE digest OWNER digest;
