"""Keeping the database's history in bounds: retention policies (`retention`) and what
the space goes to (`sizes`), the merged windows a prune writes over a run's intervals
(`merged_windows`); and the conditional writes the collector makes once per interval,
found by one indexed key (`guarded`). Beside the repositories of store/ for want of room
there."""
