"""A resident writing from a civic app says who they are in the description ("我叫李敏"): the
app's name fields are dropped, and the name in their own words goes too. No vault knows an
Open311 resident: the words around the name tell it, and so does the form's own name."""

from __future__ import annotations

from services.intake.main import create_app
from shared.kernel.privacy import REDACTED_NAME, REDACTED_PHONE
from shared.settings import Settings
from tests.open311.support import KEY, with_keys
from tests.support import running, stream_envelopes, wait_until

ITEM = "EMP-UNEMPLOYMENT-REGISTRATION"


async def test_a_name_the_resident_types_about_themselves_is_not_kept(
        settings: Settings) -> None:
    words = await _words_posted(settings, first_name="敏", last_name="李",
            description="你好，我叫李敏，上个月离职了，电话13812345678，想办失业登记")
    assert words == (f"你好，我叫{REDACTED_NAME}，上个月离职了，电话{REDACTED_PHONE}，"
                     "想办失业登记")
    text = "".join(e.model_dump_json() for e in await stream_envelopes(settings))
    assert "李敏" not in text


async def _words_posted(settings: Settings, **form: str) -> str:
    """The words of the RequestHeard of a request posted with ``form`` (with the app's key
    and the item), as the stream carries them."""
    async with running(create_app(with_keys(settings))) as client:
        r = await client.post("/open311/v2/requests.json",
                              data={"api_key": KEY, "service_code": ITEM, **form})
        assert r.status_code == 200, r.text
        return await _words_heard(settings, r.json()[0]["service_request_id"])


async def _words_heard(settings: Settings, case_id: str) -> str:
    """The words of the case's RequestHeard, as the stream carries them."""

    async def heard() -> dict | None:
        found = [e for e in await stream_envelopes(settings)
                 if e.type == "RequestHeard" and str(e.case_id) == case_id]
        return found[0].payload if found else None

    await wait_until(lambda: _some(heard()), what="the description heard on the stream")
    return str((await heard() or {})["words"])


async def _some(found: object) -> bool:
    return bool(await found)  # type: ignore[misc]


async def test_the_name_the_app_sends_apart_goes_from_the_words_it_stands_alone_in(
        settings: Settings) -> None:
    """The app sends the resident's name in its own fields, and the resident writes it alone
    in the description, where no pattern can tell it from other words: the form's name, phone
    and address are what the description is scrubbed of (then dropped, as always)."""
    words = await _words_posted(settings, first_name="秀英", last_name="王",
            phone="13912345678", address_string="浦东新区锦绣路100弄3号",
            description="楼上漏水，王秀英家天花板都湿了；秀英想问失业登记 Wang Xiuying")
    assert words == (f"楼上漏水，{REDACTED_NAME}家天花板都湿了；{REDACTED_NAME}想问失业登记 "
                     f"{REDACTED_NAME}")
    text = "".join(e.model_dump_json() for e in await stream_envelopes(settings))
    assert "秀英" not in text and "Xiuying" not in text


async def test_a_given_name_that_is_a_word_goes_where_the_description_opens_with_it(
        settings: Settings) -> None:
    """李国庆 writes from the app as 国庆 (a word too: National Day), opening a clause with it
    before what he asks: the form's name scrubs it there (scrub46: the rule of where a word
    given name stands kept 国庆诉求 and 国庆问); the holiday in the same words stays."""
    words = await _words_posted(settings, first_name="国庆", last_name="李",
            description="国庆诉求：补办失业登记。国庆问能不能代办，国庆期间不办也行")
    assert words == (f"{REDACTED_NAME}诉求：补办失业登记。{REDACTED_NAME}问能不能代办，"
                     "国庆期间不办也行")
