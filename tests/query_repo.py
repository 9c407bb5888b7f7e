"""A small real repository for the query side's tests, ingested by the real pipeline.

Python and TypeScript, classes and calls across files, an import cycle, a test
file: enough for every question to have a known answer. `IndexedRepo` holds the
pipeline (its stores: SQLite and Qdrant local mode) and a QueryService on those
same stores, as the all-in-one run wires them.
"""
from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from starlette.testclient import TestClient

from cloud.app import create_app
from cloud.query import QueryService
from edge.pipeline import IngestPipeline
from shared.jobs import Job, new_job_id
from shared.query_encoder import QueryEncoder, default_model_dir
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings

FILES = {
    "shop/__init__.py": "from shop.cart import Cart\n",
    "shop/models.py": '''\
from dataclasses import dataclass


@dataclass
class Item:
    name: str
    price_cents: int


class DigitalItem(Item):
    def download_link(self) -> str:
        return f"https://example.invalid/{self.name}"
''',
    "shop/pricing.py": '''\
from shop.models import Item


def apply_discount(amount: int, percent: int) -> int:
    """Take a percentage off an amount of cents."""
    return amount - amount * percent // 100


def tax_for(region: str) -> float:
    return {"eu": 0.2, "us": 0.07}.get(region, 0.0)


def price_of(item: Item) -> int:
    return item.price_cents
''',
    "shop/cart.py": '''\
from shop import pricing
from shop.models import Item


class Cart:
    def __init__(self):
        self.items: list[Item] = []

    def add_item(self, item: Item) -> None:
        self.items.append(item)

    def total(self, discount_percent: int = 0) -> int:
        subtotal = sum(pricing.price_of(item) for item in self.items)
        return pricing.apply_discount(subtotal, discount_percent)
''',
    "shop/orders.py": '''\
from shop.cart import Cart
from shop import inventory


class Order:
    def __init__(self, cart: Cart, email: str):
        self.cart = cart
        self.email = email

    def checkout(self) -> int:
        for item in self.cart.items:
            inventory.reserve_stock(item.name, 1)
        return Cart.total(self.cart)

    def send_confirmation_email(self, smtp) -> None:
        smtp.sendmail("shop@example.invalid", [self.email], "Thank you for your order")
''',
    "shop/inventory.py": '''\
from shop import orders

STOCK: dict[str, int] = {}


def reserve_stock(name: str, quantity: int) -> bool:
    if STOCK.get(name, 0) < quantity:
        return False
    STOCK[name] -= quantity
    return True


def pending_orders() -> list["orders.Order"]:
    return []
''',
    "tests/test_cart.py": '''\
from shop.cart import Cart
from shop.models import Item


def test_total_applies_the_discount():
    cart = Cart()
    cart.add_item(Item("book", 1000))
    assert cart.total(10) == 900
''',
    "web/format.ts": '''\
export function formatPrice(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}
''',
    "web/api.ts": '''\
import { formatPrice } from "./format";

export async function fetchOrders(userId: string): Promise<string[]> {
  const response = await fetch(`/users/${userId}/orders`);
  const orders: { total: number }[] = await response.json();
  return orders.map((order) => formatPrice(order.total));
}
''',
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(root: Path, files: dict[str, str] = FILES) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "one")
    return root


@dataclass
class IndexedRepo:
    root: Path
    url: str
    pipeline: IngestPipeline
    service: QueryService

    def ingest(self) -> str:
        """Ingest the repository as it is now; its commit."""
        job = Job(id=new_job_id(), repo_url=self.url, submitted_at=time.time(), ttl=3600)
        return self.pipeline(job, lambda stage, progress: None).summary["commit"]

    def close(self) -> None:
        self.service.close()
        self.pipeline.close()


def indexed_repo(workdir: Path, encoder) -> IndexedRepo:
    root = make_repo(workdir / "shop")
    settings = replace(Settings.from_env({"DATA_DIR": str(workdir / "data"), "DEVICE": "cpu"}),
                       allow_local_repos=True)
    pipeline = IngestPipeline(settings, encoder=encoder)
    service = QueryService(lambda: pipeline.store, lambda: pipeline.vectors,
                           lambda: QueryEncoder(default_model_dir()), allow_local=True,
                           owns_stores=False)
    indexed = IndexedRepo(root, root.as_uri(), pipeline, service)
    indexed.ingest()
    return indexed


@contextlib.contextmanager
def api_client(service: QueryService, folder: Path, token: str) -> Iterator[TestClient]:
    """The real app over `service`, with a SQLite queue of its own in `folder`."""
    queue = SqliteQueue(folder / "queue.db")
    app = create_app(Settings(admin_token=token, allow_local_repos=True), queue=queue,
                     query=service)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        queue.close()
