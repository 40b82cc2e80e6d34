"""Open311 GeoReport v2 beside intake's own API: a civic app posts and follows cases as a counter
app would. Translation only: requests become the Intake use cases, reads come from the read model.

Under ``/open311/v2``, each resource as ``.json`` and ``.xml``:

    GET  discovery          where the endpoint is, its formats, how to get an api_key
    GET  services           the service catalogue
    GET  services/{code}    what an item needs: documents, policy basis, usual time
    POST requests           open a case (channel open311) and hear the description     api_key
    GET  requests           the Open311 cases of the api_key's center, the spec's filters api_key
    GET  requests/{id}      one of them                                                 api_key
    GET  tokens/{token}     token -> service_request_id once the case is readable

A POST is ``open_case`` then ``hear_request`` (the description, in the resident's own words),
each with an Idempotency-Key for the request, so a retried POST is one case (``form.py``):
the app's own, or a random one that identical forms share for the retry window
(``recent_forms.py``). Contact and location fields are accepted and dropped, never stored,
logged or put in a key: they are personal data. Reading service requests needs the api_key
although the spec does not ask for one: these are residents' affairs, not potholes.

Where each part lives:

    routes.py            the routes (translation only)
    submission.py        POST Service Request, the use case: the request's key, open and hear
    tokens.py            the token a POST answers with while the case is not readable yet
    form.py              the POST's form: read, checked as the spec does, the request named
    recent_forms.py      forms posted without an Idempotency-Key, for one retry window only
    api_keys.py          api_key -> a counter-app credential for one center
    service_requests.py  the read model's cases as GeoReport v2 service requests
    wording.py           the catalogue and a case's life in Open311's words (zh, en)
    wire.py              .json and .xml, W3C date-times, the spec's error list
"""
