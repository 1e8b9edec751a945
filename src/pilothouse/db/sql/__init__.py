"""The SQL session stores' shared machinery: tables, the store on SQLAlchemy Core, engines per
event loop, and driver error translation. Importing this package imports SQLAlchemy."""
