"""A small Locust test for examples/demo_target.py: browse the index, the items API, a slow page."""

from locust import HttpUser, between, task


class DemoUser(HttpUser):
    """A visitor who mostly reads the items API."""

    wait_time = between(0.05, 0.2)

    @task(2)
    def index(self) -> None:
        self.client.get("/")

    @task(3)
    def items(self) -> None:
        self.client.get("/api/items")

    @task(1)
    def slow(self) -> None:
        self.client.get("/slow")
