"""Many accounts: tasks (plan as data), accounts, Dask."""
