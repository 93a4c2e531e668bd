"""License register: tables, migrations, PDF blob store, record input, issuance."""
