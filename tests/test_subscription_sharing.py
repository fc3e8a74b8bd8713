"""Which subscriptions share a stream: the key covers everything that changes what a subscriber may see, and
leaves out only the cursor it resumes from."""

from __future__ import annotations

from domain.actor import Actor
from domain.enums import Role
from subscriptions.sharing import plan

WATCH = "subscription($after: String, $r: String) { intake(regionCode: $r, after: $after) { cursor kind } }"
SUPERVISOR = Actor(id=1, role=Role.SUPERVISOR, username="sup-a", regions=("12.72.01",))


def key(actor: Actor = SUPERVISOR, query: str = WATCH, variables: dict[str, object] | None = None) -> object:
    found = plan(query, variables, None, actor)
    assert found is not None
    return found.key


def test_the_cursor_is_the_members_own_and_not_part_of_the_key() -> None:
    resumed = plan(WATCH, {"after": "41", "r": "12.72.01.1001"}, None, SUPERVISOR)
    fresh = plan(WATCH, {"r": "12.72.01.1001"}, None, SUPERVISOR)
    assert resumed is not None and fresh is not None
    assert resumed.key == fresh.key
    assert (resumed.after, fresh.after) == (41, None)
    assert resumed.variables == fresh.variables == {"r": "12.72.01.1001"}


def test_same_access_shares_whoever_the_person_is() -> None:
    colleague = Actor(id=2, role=Role.SUPERVISOR, username="sup-a2", regions=("12.72.01",))
    assert key(colleague) == key(SUPERVISOR)


def test_anything_that_changes_what_is_seen_splits_the_key() -> None:
    others = [
        Actor(id=1, role=Role.SUPERVISOR, username="sup-a", regions=("12.72.02",)),  # another area
        Actor(id=1, role=Role.MANAGER, username="sup-a", regions=("12.72.01",)),  # another role
        Actor(id=1, role=Role.PARTNER, username="p", regions=("12.72.01",)),  # no personal data
        Actor(id=1, role=Role.PARTNER, username="p", regions=("12.72.01",), personal_data_grant=True),
        Actor(id=1, role=Role.PARTNER, username="p", regions=("12.72.01",), programs=frozenset({"PKH"})),
    ]
    keys = {key(actor) for actor in [SUPERVISOR, *others]}
    assert len(keys) == len(others) + 1
    assert key(variables={"r": "12.72.01.1001"}) != key(variables={"r": "12.72.01.1002"})
    assert key(query=WATCH.replace("cursor kind", "cursor kind regionCode")) != key()


def test_my_assignments_is_shared_only_by_the_same_person() -> None:
    query = "subscription { myAssignments { cursor } }"
    colleague = Actor(id=2, role=Role.SUPERVISOR, username="sup-a2", regions=("12.72.01",))
    assert key(SUPERVISOR, query) != key(colleague, query)
    assert key(SUPERVISOR, query) == key(SUPERVISOR, query)


def test_what_strawberry_should_answer_is_left_to_it() -> None:
    for query, variables in [
        ("subscription { workloadChanged { regionCode } }", None),  # not an event stream
        ("subscription { intake { cursor } caseEvents { cursor } }", None),  # two root fields
        ("subscription { ...F } fragment F on Subscription { intake { cursor } }", None),
        ("subscription($a: String!) { intake(after: $a) { cursor } }", {"a": "1"}),  # needs its cursor
        (WATCH, {"after": "not a cursor"}),  # INVALID_CURSOR, worded by the resolver
        (WATCH, {"after": 5}),  # a variable of the wrong type
        ("subscription { intake { cursor }", None),  # does not parse
        ("query { me { id } }", None),
    ]:
        assert plan(query, variables, None, SUPERVISOR) is None, query
    assert plan(WATCH, None, None, None) is None  # not authenticated
