"""The test-only /api/v2/write proxy behaves like InfluxDB 1.8's compatibility API."""

from __future__ import annotations

import gzip

import aiohttp
import pytest

from harness.servers import InfluxServer, V2ProxyServer, free_port
from harness.v2_proxy import V2Proxy

pytestmark = pytest.mark.integration


async def test_write_precisions_gzip_and_errors(
    v2_proxy: V2ProxyServer, influxdb: InfluxServer, influx_db: str
) -> None:
    url = f"{v2_proxy.url}/api/v2/write"
    headers = {"Authorization": "Token anything"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for precision, ts in (("s", 2), ("ms", 3_000), ("us", 4_000_000), ("ns", 5_000_000_000)):
            params = {"org": "o", "bucket": influx_db, "precision": precision}
            async with http.post(url, params=params, data=f"m v={ts}i {ts}") as r:
                assert r.status == 204, await r.text()
        params = {"org": "o", "bucket": f"{influx_db}/autogen"}
        body = gzip.compress(b"m v=6i 6000000000")
        async with http.post(
            url, params=params, data=body, headers={"Content-Encoding": "gzip"}
        ) as r:
            assert r.status == 204, await r.text()

        async with http.post(url, params=params, data='m v="s" 7000000000') as r:
            assert r.status == 400
            error = await r.json()
            assert error["code"] == "invalid"
            assert 'input field "v" on measurement "m"' in error["message"]
        async with http.post(url, params={"bucket": "nope"}, data="m v=1 1") as r:
            assert r.status == 404
            assert (await r.json())["code"] == "not found"
        async with http.post(
            url, params={"bucket": influx_db, "precision": "h"}, data="m v=1"
        ) as r:
            assert r.status == 400
        async with http.post(url, data="m v=1 1") as r:
            assert (r.status, (await r.json())["message"]) == (400, "bucket is required")

        async with http.get(f"{v2_proxy.url}/health") as r:
            assert r.status == 200 and (await r.json())["status"] == "pass"
        async with http.get(f"{v2_proxy.url}/ping") as r:
            assert r.status == 204 and "X-Influxdb-Version" in r.headers
        params = {"db": influx_db, "q": 'SELECT "v" FROM "m"', "epoch": "s"}
        async with http.get(f"{v2_proxy.url}/query", params=params) as r:
            values = (await r.json())["results"][0]["series"][0]["values"]
    assert values == [[2, 2], [3, 3_000], [4, 4_000_000], [5, 5_000_000_000], [6, 6]]


async def test_in_process_proxy_reports_a_dead_upstream() -> None:
    proxy = V2Proxy(f"http://127.0.0.1:{free_port()}")
    url = await proxy.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/health") as r:
                assert r.status == 503 and (await r.json())["status"] == "fail"
            async with http.post(f"{url}/api/v2/write", params={"bucket": "b"}, data="m v=1") as r:
                assert r.status == 503 and (await r.json())["code"] == "unavailable"
    finally:
        await proxy.stop()


async def test_large_uncompressed_body_passes(v2_proxy: V2ProxyServer, influx_db: str) -> None:
    body = "\n".join(f'big,tag=t{i % 10} v={i}i,pad="{"x" * 200}" {i}' for i in range(6_000))
    assert len(body) > 1024 * 1024
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{v2_proxy.url}/api/v2/write", params={"bucket": influx_db}, data=body) as r,
    ):
        assert r.status == 204, await r.text()
