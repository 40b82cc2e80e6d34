"""Every part of `sixstep demo` that registers residents waits its turn when intake paces
registrations by ID number (429 with Retry-After, ``LOOKUP_BURST``, ``LOOKUP_RATE_PER_MINUTE``).

Only the day's residents waited; the cancer story and the hard cases registered theirs at
once. After a day in which clerk-001 had registered a few, the story's second registration
came back 429 and `sixstep demo` ended with "the cancer story failed" (exit 1): what a fresh
`make run` showed on 2026-12-05. The tests' settings register freely (``lookup_burst``
1000), so no test had met the limit."""

from __future__ import annotations

from datetime import UTC, datetime

from services.intake.main import create_app
from shared.cli.cancer_story import the_patient_comes
from shared.cli.demo_stories import StoryTally, _Counter, story_residents
from shared.security.principals import Role
from shared.settings import Settings
from tests.support import TEST_CENTER, running, token_for


async def test_the_story_and_the_hard_cases_wait_their_turn_to_register(
        settings: Settings) -> None:
    # One registration at once per clerk, the next a fifth of a second later.
    paced = settings.model_copy(update={"lookup_burst": 1, "lookup_rate_per_minute": 300.0})
    token = token_for(paced, Role.CLERK, TEST_CENTER, sub="clerk-001")
    async with running(create_app(paced), token=token) as client:
        story = await the_patient_comes(client, datetime.now(UTC), TEST_CENTER)
        assert story.patient and story.wife and story.plan_id
        tally = StoryTally()
        counter = _Counter(client, token, TEST_CENTER, tally)
        found = [await counter.register(person) for person in story_residents(
            datetime.now(UTC).date())]
        assert tally.errors == [] and all(found)
