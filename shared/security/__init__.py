"""Who may do what, without HTTP: the verified caller and the signed tokens that name them.

- ``principals``  roles, the verified principal, and the caller of the work being done here
- ``tokens``      signing and verifying bearer tokens (JWT), with key rotation

Requests are authenticated with these in ``shared.http.auth``.
"""
