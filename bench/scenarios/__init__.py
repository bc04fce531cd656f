"""One module per scenario of issue 6; each returns plain JSON-able results."""
