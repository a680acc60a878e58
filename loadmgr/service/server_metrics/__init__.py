"""Server-side metrics (issue 23): what the service under load did, beside every run.

- `sources`: registered Prometheus servers (`loadmgr sources`), scoped like tests.
- `definitions`: `--server-metric 'NAME[:UNIT]=PROMQL'` on tests and runs, checked by
  Prometheus' own parser when the source answers.
- `live`: read for each interval in a background thread, never delaying its write.
- `at_end`: the end's range query fills any hole, `serverStats`, thresholds on them.
"""
