"""Every write of the store runs through the sync face and the async face alike (the
same planned round trips): the checks of tests/store_writes.py, on the embedded Redis."""
import pytest

from tests.store_writes import EVERY_WRITE, FACES


@pytest.mark.parametrize("face", FACES, ids=repr)
@pytest.mark.parametrize("check", EVERY_WRITE, ids=lambda check: check.__name__)
def test_a_write_through_either_face(check, face, redis_conn):
    check(face, redis_conn)
