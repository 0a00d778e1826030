"""`loyalist audience ...` and `loyalist forget` through the real CLI entry point: output and one-line errors."""

from __future__ import annotations

import yaml

from loyalist.cli import main

from .builders import build_published, customer, write_definition


def test_validate_list_and_export(settings, tmp_path, capsys):
    assert main(["audience", "validate"]) == 0
    assert "audience definition(s) valid" in capsys.readouterr().out
    d = tmp_path / "defs"
    write_definition(d, yaml.safe_dump({"name": "email_all", "description": "d", "owner": "o", "channel": "email",
                                        "filters": {"is_prospect": False}}))
    build_published(settings, [customer(1), customer(2, consent_email=False)])
    assert main(["audience", "list", "--dir", str(d)]) == 0
    assert "email_all" in capsys.readouterr().out
    assert main(["audience", "export", "email_all", "--format", "mailchimp", "--dir", str(d),
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "1 rows, +1 / -0" in out and (tmp_path / "out" / "email_all__mailchimp__2025-03-31.csv").exists()
    # Mailchimp reports an unsubscribe: the next export drops them, the diff says so.
    assert main(["audience", "suppress", "--email", " User1@Example.com", "--channel", "email"]) == 0
    assert main(["audience", "export", "email_all", "--format", "mailchimp", "--dir", str(d),
                 "--out", str(tmp_path / "out")]) == 0
    assert "0 rows, +0 / -1 since the previous export, 1 suppressed" in capsys.readouterr().out


def test_errors_are_one_line_without_traceback(settings, tmp_path, capsys):
    d = tmp_path / "defs"
    write_definition(d, "name: bad_one\ndescription: d\nowner: o\nchannel: email\nfilters: {city: {like: '%'}}\n")
    assert main(["audience", "validate", "--dir", str(d)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "unknown operator 'like'" in err and err.count("\n") == 1
    assert main(["audience", "export", "bad_one", "--format", "csv", "--dir", str(d)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert main(["forget", "--email", "not-an-email"]) == 1
    assert capsys.readouterr().err == "error: cannot read 'not-an-email' as an email\n"
