"""Salesforce OAuth 2.0 token endpoint and session tokens.

Grants (Salesforce Help, "OAuth Authorization Flows"): JWT bearer (RS256 assertion with ``iss`` = consumer
key, ``sub`` = username, ``aud`` = login URL, ``exp`` in the future), client credentials, and the legacy
username-password flow. A bad grant gets ``400 {"error": "invalid_grant", "error_description":
"authentication failure"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from sandbox.http import Request, Response, json_response
from sandbox.tokens import TokenStore

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Credentials:
    instance_url: str
    login_url: str
    client_id: str
    client_secret: str
    username: str
    password: str
    org_id: str
    user_id: str
    jwt_public_key: bytes


def new_token(org_id: str) -> str:
    """An access token shaped like Salesforce's: ``<org id>!<opaque>``."""
    return f"{org_id[:15]}!AQ{secrets.token_urlsafe(72)}"


def _fail(error: str = "invalid_grant", description: str = "authentication failure") -> Response:
    return json_response(400, {"error": error, "error_description": description})


def _check_jwt(assertion: str, creds: Credentials) -> bool:
    audiences = [creds.login_url, creds.login_url.rstrip("/") + "/"]
    try:
        claims = jwt.decode(
            assertion,
            creds.jwt_public_key,
            algorithms=["RS256"],
            audience=audiences,
            issuer=creds.client_id,
            options={"require": ["exp", "iss", "sub", "aud"]},
        )
    except jwt.PyJWTError:
        return False
    return bool(claims.get("sub") == creds.username)


def token_endpoint(request: Request, creds: Credentials, tokens: TokenStore) -> Response:
    """``POST /services/oauth2/token``."""
    if request.method != "POST":
        return _fail("invalid_request", "must use HTTP POST")
    form = request.form()
    grant = form.get("grant_type", "")
    if grant == JWT_GRANT:
        ok = _check_jwt(form.get("assertion", ""), creds)
    elif grant == "client_credentials":
        if form.get("client_id") != creds.client_id:
            return _fail("invalid_client_id", "client identifier invalid")
        ok = hmac.compare_digest(form.get("client_secret", ""), creds.client_secret)
        if not ok:
            return _fail("invalid_client", "invalid client credentials")
    elif grant == "password":
        if form.get("client_id") != creds.client_id:
            return _fail("invalid_client_id", "client identifier invalid")
        ok = (
            hmac.compare_digest(form.get("client_secret", ""), creds.client_secret)
            and form.get("username") == creds.username
            and hmac.compare_digest(form.get("password", ""), creds.password)
        )
    else:
        return _fail("unsupported_grant_type", "grant type not supported")
    if not ok:
        return _fail()
    token = tokens.issue(new_token(creds.org_id))
    issued_at = str(int(time.time() * 1000))
    signature = base64.b64encode(
        hmac.new(
            creds.client_secret.encode(), f"{creds.instance_url}/id/{issued_at}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    return json_response(
        200,
        {
            "access_token": token,
            "instance_url": creds.instance_url,
            "id": f"{creds.login_url}/id/{creds.org_id}/{creds.user_id}",
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
            "scope": "api",
        },
    )
