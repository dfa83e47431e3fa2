import pytest

from churnguard.domain.identity import bucket_of, customer_key


def test_keyed_hash_is_stable_keyed_and_not_the_id():
    a = customer_key("7590-VHVEG", b"k1")
    assert a == customer_key(" 7590-VHVEG ", b"k1")
    assert a != customer_key("7590-VHVEG", b"k2")
    assert "7590" not in a and len(a) == 64


def test_bucket_is_stable_and_roughly_uniform():
    keys = [customer_key(f"c{i}", b"k") for i in range(20000)]
    share = sum(bucket_of(k, 100) < 10 for k in keys) / len(keys)
    assert 0.09 < share < 0.11
    assert bucket_of(keys[0]) == bucket_of(keys[0])


def test_empty_key_is_refused():
    with pytest.raises(ValueError):
        customer_key("x", b"")
