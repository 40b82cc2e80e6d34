"""The HTTP surface every service shares (FastAPI).

- ``app``               the app factory: ``new_app``, ``install_surface`` (everything below, in
                        order), ``serve`` (uvicorn on the service's port)
- ``errors``            one error shape, and the handlers that render every error in it
- ``dependencies``      the write headers and the caller (``Write``), the pool and settings,
                        ``?after=``, and ``WrittenPublic``, the answer to every write
- ``auth``              the authentication middleware and the role and center dependencies
- ``fast_route``        a route class that answers the ordinary request without FastAPI's solver
- ``limits``            body size, NUL characters, and token buckets per credential
- ``metrics``           every request counted and timed, and ``/metrics``
- ``correlation``       a correlation id per request, in the logs and echoed back
- ``health``            ``/health``, ``/ready`` and the ``/ops`` routes of ``ops``
- ``ops``               the operations routes: consumers, dead-letter replay, the calendar
- ``security_headers``  the browser security headers on every answer
"""
