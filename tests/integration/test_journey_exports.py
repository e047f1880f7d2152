"""PDF and PNG exports of a journey map with real processes: gunicorn answers the widget, a real RQ worker
starts headless Chromium, renders the map and stores the file; another organisation gets 404 for every
export URL; a worker without Chromium fails with a message that tells the admin what to install."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import time
import zlib

import pytest
import requests

from tests.servers import rq_worker, stack_env, web_server
from tests.support import PASSWORD, csrf_token
from worker.jobs.exports import chromium_path

TITLE = "Quarterly VPN Outage Map"

needs_chromium = pytest.mark.skipif(
    chromium_path() is None, reason="no Chromium: install Debian's chromium (`make browser`)"
)


@pytest.fixture
def stack(app_config, app):
    """Web + one worker on the suite's database, Redis and storage."""
    env = stack_env(app_config)
    with web_server(env) as base, rq_worker(env):
        yield base


@pytest.fixture
def stack_without_chromium(app_config, app):
    """Web + one worker whose machine has no Chromium."""
    env = stack_env(app_config, CHROMIUM_PATH="/nonexistent/chromium")
    with web_server(env) as base, rq_worker(env):
        yield base


class Browser:
    """A person at a browser, through the real forms and the requests htmx sends."""

    def __init__(self, base: str, email: str) -> None:
        self.base, self.http = base, requests.Session()
        page = self.http.get(f"{base}/login", timeout=10).text
        answer = self.http.post(
            f"{base}/login",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page)},
            timeout=30,
        )
        assert answer.status_code == 200 and "Log out" in answer.text, f"{email} could not log in"
        self.token = csrf_token(answer.text)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base + path, timeout=30, **kwargs)

    def hx_post(self, path: str, data: dict) -> requests.Response:
        headers = {"HX-Request": "true", "X-CSRFToken": self.token}
        return self.http.post(self.base + path, data=data, headers=headers, timeout=30)

    def new_journey(self, slug: str, title: str) -> str:
        """Create a journey from the IT incident template; returns its path."""
        answer = self.http.post(
            f"{self.base}/o/{slug}/journeys",
            data={"csrf_token": self.token, "template": "it-incident", "title": title},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"].removeprefix(self.base)

    def export(self, journey: str, fmt: str, timeout_s: float = 90) -> tuple[str, str]:
        """Start an export from the map's button and follow the widget; returns (job path, final widget)."""
        started = self.hx_post(f"{journey}/exports", {"fmt": fmt})
        assert started.status_code == 202, started.text
        job = re.search(r'hx-get="([^"]+/exports/[A-Za-z0-9-]+)"', started.text).group(1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            widget = self.get(job, headers={"HX-Request": "true"}).text
            state = re.search(r'data-export-state="(\w+)"', widget).group(1)
            if state not in ("queued", "running"):
                return job, widget
            assert 'hx-trigger="load delay:1s"' in widget  # it keeps polling itself
            time.sleep(0.3)
        raise AssertionError(f"export {job} did not finish in {timeout_s} s: {widget}")


def _pdf_text(data: bytes) -> str:
    """The text of a PDF: pdftotext when installed, else a decoder for Chromium's (Skia's) own PDFs."""
    if shutil.which("pdftotext"):
        done = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True)
        return done.stdout.decode()
    objects = {int(m.group(1)): m.group(2) for m in re.finditer(rb"(\d+) 0 obj\s*(.*?)endobj", data, re.S)}

    def stream(body: bytes) -> bytes:
        raw = re.search(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S).group(1)
        return zlib.decompress(raw) if b"/FlateDecode" in body.split(b"stream", 1)[0] else raw

    def cmap(number: int) -> dict[int, str]:
        text, mapping = stream(objects[number]).decode("latin-1"), {}
        for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
            for code, char in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                mapping[int(code, 16)] = bytes.fromhex(char).decode("utf-16-be")
        for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
            for low, high, first in re.findall(r"<(\w+)>\s*<(\w+)>\s*<(\w+)>", block):
                for offset in range(int(high, 16) - int(low, 16) + 1):
                    mapping[int(low, 16) + offset] = chr(int(first, 16) + offset)
        return mapping

    fonts = {}
    for body in objects.values():
        for name, number in re.findall(rb"/(F\d+) (\d+) 0 R", body):
            font = objects.get(int(number), b"")
            unicode = re.search(rb"/ToUnicode (\d+) 0 R", font)
            if unicode:
                fonts[name.decode()] = cmap(int(unicode.group(1)))
    pages = []
    for body in objects.values():
        if re.search(rb"/Type /Page\b", body):
            for number in re.findall(rb"/Contents (\d+) 0 R", body):
                content, font, words = stream(objects[int(number)]).decode("latin-1"), {}, []
                for token in re.finditer(r"/(F\d+) [\d.]+ Tf|<([0-9A-Fa-f]*)>|\bET\b", content):
                    if token.group(1):
                        font = fonts.get(token.group(1), {})
                    elif token.group(2) is not None:
                        hexcodes = token.group(2)
                        codes = [int(hexcodes[i : i + 4], 16) for i in range(0, len(hexcodes), 4)]
                        words.append("".join(font.get(code, "") for code in codes))
                    else:
                        words.append("\n")
                pages.append("".join(words))
    return "\n".join(pages)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@needs_chromium
def test_export_pdf_and_png_of_a_template_journey(stack, tenant_a, tenant_b):
    owner = Browser(stack, tenant_a.emails["owner"])
    journey = owner.new_journey(tenant_a.slug, TITLE)
    page = owner.get(journey).text
    assert 'hx-target="#export-status"' in page and "Export PDF" in page and "Export PNG" in page

    job, widget = owner.export(journey, "pdf")
    assert 'data-export-state="done"' in widget, widget
    link = re.search(r'href="([^"]+/file)"', widget).group(1)
    assert link == f"{job}/file"
    pdf = owner.get(link)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert "attachment" in pdf.headers["Content-Disposition"]
    assert "Quarterly_VPN_Outage_Map.pdf" in pdf.headers["Content-Disposition"]
    assert pdf.content.startswith(b"%PDF")
    assert b"/MediaBox [0 0 1191" in pdf.content  # A3 landscape: 420 mm = 1190.55 pt wide
    text = " ".join(_pdf_text(pdf.content).split())
    assert TITLE in text  # the heading, as drawn text
    for drawn in ("Hits the problem", "Frontstage", "Notice the problem", "Pain point"):
        assert drawn in text, f"{drawn!r} is not in the PDF"

    png_job, widget = owner.export(journey, "png")
    assert 'data-export-state="done"' in widget, widget
    png = owner.get(f"{png_job}/file")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    width, height = _png_size(png.content)
    assert width > 1000 and height > 600, (width, height)
    assert len(png.content) > 50_000  # a drawn map, not a blank page

    # Any member may export, a viewer too.
    viewer = Browser(stack, tenant_a.emails["viewer"])
    assert viewer.hx_post(f"{journey}/exports", {"fmt": "png"}).status_code == 202
    assert viewer.hx_post(f"{journey}/exports", {"fmt": "docx"}).status_code == 400
    assert viewer.get(link).status_code == 200  # a colleague's export of the same journey

    # A job is only ever shown under its own journey: another journey of A does not reach it.
    other = owner.new_journey(tenant_a.slug, "Another map")
    assert owner.get(f"{other}/exports/{job.rsplit('/', 1)[1]}").status_code == 404
    assert owner.get(f"{other}/exports/{job.rsplit('/', 1)[1]}/file").status_code == 404

    # B's member: 404 for A's export URLs, under A's slug and under B's own journey alike.
    intruder = Browser(stack, tenant_b.emails["owner"])
    job_id = job.rsplit("/", 1)[1]
    b_journey = intruder.new_journey(tenant_b.slug, "Beta map")
    for path in (job, f"{job}/file", f"{png_job}/file", f"{b_journey}/exports/{job_id}"):
        answer = intruder.get(path)
        assert answer.status_code == 404, f"{path} answered {answer.status_code}"
        assert TITLE not in answer.text
    assert intruder.get(f"{b_journey}/exports/{job_id}/file").status_code == 404
    assert intruder.get(f"{b_journey}/exports/nonexistent").status_code == 404
    assert intruder.hx_post(f"{journey}/exports", {"fmt": "pdf"}).status_code == 404


def test_without_chromium_the_export_fails_and_says_what_to_install(stack_without_chromium, tenant_a):
    editor = Browser(stack_without_chromium, tenant_a.emails["editor"])
    journey = editor.new_journey(tenant_a.slug, TITLE)
    job, widget = editor.export(journey, "pdf", timeout_s=60)
    assert 'data-export-state="failed"' in widget and 'role="alert"' in widget
    assert "Chromium is not installed on the worker" in widget
    assert "make browser" in widget and "/nonexistent/chromium" in widget
    assert editor.get(f"{job}/file").status_code == 404  # nothing to download
