"""Sending mail over SMTP_URL (smtp://user:pass@host:port, smtps:// for TLS, ?starttls=1)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlparse


def send(smtp_url: str, sender: str, recipient: str, subject: str, body: str) -> None:
    """Deliver one plain-text message."""
    url = urlparse(smtp_url)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content(body)
    port = url.port or (465 if url.scheme == "smtps" else 25)
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    with smtp_class(url.hostname or "localhost", port, timeout=30) as smtp:
        if parse_qs(url.query).get("starttls") == ["1"]:
            smtp.starttls()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(message)
