"""Keeping the database's history in bounds: retention policies (`retention`) and what
the space goes to (`sizes`). Beside the repositories of store/ for want of room there."""
