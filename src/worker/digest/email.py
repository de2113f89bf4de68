"""The digest by e-mail: one multipart message (plain text, then HTML) per recipient, through smtplib.

TLS per `[smtp] tls`: "starttls" upgrades the plain connection before anything else is said (a server
that does not offer STARTTLS is refused, never talked to in clear), "implicit" speaks TLS from the first
byte (SMTPS, port 465), "none" is for a relay on loopback and never logs in. Certificates are verified
against the system's CAs or `ca_file`. Each message opens its own connection, so one recipient's failure
never leaves a half-used session for the next.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from worker.config.settings import SmtpSettings
from worker.digest.model import Digest
from worker.digest.render import Rendered
from worker.digest.retry import PermanentDelivery, TransientDelivery
from worker.sync.follow_up import visible

DIGEST_HEADER = "X-Bant-Sync-Digest"
"""Names the connection and week a message belongs to (`salesforce 2026-W49`), for filters and tests."""


def message(digest: Digest, rendered: Rendered, sender: str) -> EmailMessage:
    """The digest e-mail: From the configured address, To the recipient, text and HTML alternatives. The
    recipient's name is the CRM's: control characters (a CR/LF would start another header) are dropped."""
    mail = EmailMessage()
    mail["Subject"] = rendered.subject
    mail["From"] = sender
    mail["To"] = formataddr((visible(digest.name, newlines=False), digest.recipient))
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail[DIGEST_HEADER] = f"{digest.connection} {digest.week}"
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    return mail


class SmtpSender:
    """Sends one EmailMessage per call, mapping smtplib's errors onto Transient/PermanentDelivery."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._settings.ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        if s.tls == "implicit":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context())
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        if s.tls == "starttls":
            try:
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise PermanentDelivery(
                        f"the SMTP server {s.host}:{s.port} does not offer STARTTLS: set smtp.tls to "
                        f"'implicit' for an SMTPS port, or use a server that offers it"
                    )
                client.starttls(context=self._context())
                client.ehlo()
            except BaseException:
                client.close()
                raise
        return client

    def send(self, mail: EmailMessage) -> None:
        """Deliver `mail` to its To: address; raises TransientDelivery or PermanentDelivery."""
        s = self._settings
        try:
            client = self._connect()
            try:
                if s.username and s.password is not None:
                    client.login(s.username, s.password.reveal())
                client.send_message(mail)
            finally:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _by_code(code, reply, "refused the recipient") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentDelivery(
                f"the SMTP server refused the login of smtp.username {s.username!r} ({exc.smtp_code}): "
                f"check the user and its password secret"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error, "refused the message") from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentDelivery(
                f"the SMTP server's certificate is not trusted ({exc.verify_message}): set smtp.ca_file to "
                f"the CA that signed it"
            ) from None
        except ssl.SSLError as exc:
            raise PermanentDelivery(f"TLS with the SMTP server failed: {exc.reason or exc}") from None
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            raise TransientDelivery(
                f"the SMTP server {s.host}:{s.port} dropped the connection: {exc}"
            ) from None
        except smtplib.SMTPException as exc:  # e.g. no AUTH offered: a subclass of OSError, so first
            raise PermanentDelivery(f"SMTP error with {s.host}:{s.port}: {exc}") from None
        except OSError as exc:
            raise TransientDelivery(
                f"the SMTP server {s.host}:{s.port} could not be reached: {exc}"
            ) from None


def _by_code(code: int, reply: bytes | str, what: str) -> TransientDelivery | PermanentDelivery:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"the SMTP server {what}: {code} {text}".strip()
    return TransientDelivery(message) if 400 <= code < 500 else PermanentDelivery(message)
