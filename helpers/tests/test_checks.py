from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa
import pytest

from dslc import checks
from dslc.errors import AssumptionError, DslcError

DF = pd.DataFrame(
    {"id": [1, 2, 2, 4], "age": [34.0, None, 150.0, -1.0], "city": ["a", "b", "b", None]},
    index=[10, 11, 12, 13],
)


def test_passing_checks_return_the_frame() -> None:
    good = DF.iloc[[0]]
    assert checks.no_missing(good, why="w") is good
    assert checks.unique(DF, ["id", "age"], why="w") is DF
    assert checks.in_range(good, "age", 0, 120, why="w") is good
    assert checks.has_columns(DF, ["id", "age"], why="w") is DF
    assert checks.assume(DF, "ids positive", lambda d: d["id"] > 0, why="w") is DF
    assert checks.expect(DF, {"id": pa.Check.gt(0)}, why="w") is DF


def test_no_missing_names_rows_and_why() -> None:
    with pytest.raises(AssumptionError) as err:
        checks.no_missing(DF, ["age", "city"], why="the model cannot impute")
    msg = str(err.value)
    assert isinstance(err.value, AssertionError) and isinstance(err.value, DslcError)
    assert "\n" not in msg
    assert msg.startswith("assumption failed: no missing values in age, city:")
    assert "2 of 4 rows break it" in msg and "row 11 (age=nan)" in msg
    assert re.search(r"row 13 \(city=(None|nan)\)", msg)  # pandas 2 keeps None, 3 uses nan
    assert msg.endswith("why it matters: the model cannot impute")


def test_in_range_and_open_bounds() -> None:
    with pytest.raises(AssumptionError, match=r"age within \[0, 120\]: 2 of 4 rows") as err:
        checks.in_range(DF, "age", 0, 120, why="entry errors")
    assert "row 12 (age=150.0)" in str(err.value) and "row 13 (age=-1.0)" in str(err.value)
    with pytest.raises(AssumptionError, match=r"age within \[0, inf\]: 1 of 4"):
        checks.in_range(DF, "age", min=0, why="w")
    with pytest.raises(AssumptionError, match=r"\[-inf, 100\]: 1 of 4"):
        checks.in_range(DF, "age", max=100, why="w")
    with pytest.raises(DslcError, match="needs min, max"):
        checks.in_range(DF, "age", why="w")


def test_unique_and_missing_column() -> None:
    with pytest.raises(AssumptionError, match="rows unique on id: 2 of 4 rows break it"):
        checks.unique(DF, "id", why="id is the key")
    with pytest.raises(AssumptionError, match="column 'zip' is missing"):
        checks.has_columns(DF, ["id", "zip"], why="joins need zip")


def test_assume_custom_predicate_and_row_cap() -> None:
    big = pd.DataFrame({"x": range(20)})
    with pytest.raises(AssumptionError) as err:
        checks.assume(big, "x below 3", lambda d: d["x"] < 3, why="w")
    msg = str(err.value)
    assert "17 of 20 rows break it" in msg and "and 12 more" in msg
    assert msg.count("row ") == 5  # the first 5, as the README says
    with pytest.raises(AssumptionError, match="the check returned False"):
        checks.assume(big, "never", lambda d: False, why="w")


def test_pytest_reports_assumption_as_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pandas as pd
        from dslc import checks

        def test_data():
            checks.no_missing(pd.DataFrame({"a": [None]}), why="needed")
        """
    )
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssumptionError: assumption failed: no missing values in a*"])
