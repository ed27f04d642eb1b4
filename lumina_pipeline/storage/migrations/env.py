"""Alembic environment: runs on the connection `database.migrate` hands over."""

from alembic import context
from sqlalchemy import text

from lumina_pipeline.storage.database import VERSION_TABLE
from lumina_pipeline.storage.models import Base

connection = context.config.attributes["connection"]
# Two processes starting at once must not both create the tables.
connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('lumina-migrations'))"))
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
