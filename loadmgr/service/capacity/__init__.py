"""Capacity across loads (issue 27): a stepped run's windows, the Universal Scalability
Law fitted to throughput against concurrency, and the capacity trend across runs.

- `step_windows`: each step of a stepped run (`runs start --steps`) as its own window,
  its settle time left out (stored with the run's end as `stepWindows`).
- `usl`: the fit (scipy's curve_fit, σ and κ bounded at 0), peak, N*, knee, R².
- `report`: `tests capacity TEST [--run RUN]`: the points of a run's steps or of finished
  runs at different loads, fitted; and the capacity trend (each stepped run's peak and
  knee as a series, with change points).
"""
