"""Identity: who is signing in, and how sure we are.

Argon2id passwords under a length-first policy, TOTP and WebAuthn passkeys, server-side
sessions with idle and absolute timeouts, scoped API tokens, throttling and lockout,
and step-up for the most sensitive operations. Depends only on ``custodes.core``.
"""
