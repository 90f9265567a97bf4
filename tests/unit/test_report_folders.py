"""One report folder per run: ids that clean to the same name do not share a folder."""

from __future__ import annotations

import pytest

from perflab.errors import PerflabError
from perflab.report.loadtest_report import safe_name


def test_a_lab_run_id_is_its_own_folder_name() -> None:
    assert safe_name("20261206T031408Z-login-storm-default-1836") == "20261206T031408Z-login-storm-default-1836"


def test_ids_that_clean_alike_get_different_folders() -> None:
    # GIVEN two user group ids that both clean to exp_1
    a, b = safe_name("exp/1"), safe_name("exp 1")
    # THEN each keeps the cleaned name, told apart by a hash of the id, and the same id maps the same way
    assert a.startswith("exp_1-") and b.startswith("exp_1-") and a != b
    assert a == safe_name("exp/1") and "/" not in a and " " not in b
    # and neither can be the folder of an id that is already clean
    assert safe_name("exp_1") == "exp_1" and "exp_1" not in (a, b)


def test_an_id_with_nothing_usable_is_refused() -> None:
    with pytest.raises(PerflabError, match="no usable folder name"):
        safe_name("///")
