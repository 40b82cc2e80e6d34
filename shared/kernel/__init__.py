"""The kernel: what every service's domain shares, with no I/O and nothing of the project below
it but the event contracts (``shared.contracts``).

- ``errors``       the errors a command can end with, each one HTTP status and code
- ``meta``         the envelope parts every event records (``Meta``, ``meta_for``)
- ``idempotency``  the base of every aggregate: it remembers its commands' keys
- ``scrubbing``    every event an aggregate records has its free text scrubbed first
- ``privacy/``     the redactor: personal data out of free text (``redact``, ``KnownPerson``)
- ``moments``      the window a command's moments and days must lie in
- ``clock``        what time it is, injectable
- ``tasks``        ending the tasks a coroutine started, also when cancelled twice
- ``calendar``     working days (statutory holidays, make-up days, provisional years)
- ``holidays``     holidays files (official schedules added by hand)
- ``statutory``    the law's holidays, for years without an official schedule
"""
