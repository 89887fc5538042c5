"""Alembic's environment: migrations run on the connection `service.store.migrate.upgrade`
passes in, inside its transaction (there is no alembic.ini)."""

from alembic import context

from service.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():  # joins the caller's transaction
    context.run_migrations()
