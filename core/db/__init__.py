"""The database: which one (`urls`), its engine (`engine`), the manager with sessions and
transactions (`database`), Alembic migrations under a lock (`migrations`), the models'
declarative base (`base`) and the errors (`errors`). ``core.database`` re-exports the
names the seed's README documents."""
