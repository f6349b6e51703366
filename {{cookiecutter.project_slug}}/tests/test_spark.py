"""Spark's prerequisites are checked up front, with one line saying what to install."""

import pytest

from {{ cookiecutter.module_name }} import spark


def test_missing_java_names_the_package_to_install(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark.shutil, "which", lambda name: None)
    with pytest.raises(spark.SparkUnavailable) as error:
        spark.java()
    message = str(error.value)
    assert "\n" not in message
    assert spark.JAVA_PACKAGE in message and "JAVA_HOME" in message


def test_java_home_without_java_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(spark.SparkUnavailable, match="has no bin/java"):
        spark.java()


def test_java_home_wins_over_path(monkeypatch, tmp_path):
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert spark.java() == str(java)
