"""Alembic revisions reviewed through Alembic's own offline mode: a real environment made by
``alembic init`` (the standard template), revisions written by hand, rendered and reviewed."""
from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.config import Config

from greenlight.cli.main import main
from greenlight.errors import GreenlightError, UsageError
from schema_review.alembic_sql import render_alembic, review_alembic
from schema_review.review import Reviewer, ReviewSettings
from schema_review.sizes import SizesFile

CREATE = '''"""create widgets"""
from alembic import op
import sqlalchemy as sa

revision = "a1f00d"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(50)))
    op.create_index("ix_widgets_name", "widgets", ["name"])


def downgrade():
    op.drop_table("widgets")
'''

INDEX = '''"""index the large orders table"""
from alembic import op
import sqlalchemy as sa

revision = "b2beef"
down_revision = "a1f00d"
branch_labels = None
depends_on = None

# a comment so that def upgrade is not on the same line as in the first revision


def upgrade():
    op.create_index("ix_orders_email", "orders", ["email"])
    op.add_column("widgets", sa.Column("colour", sa.String(20)))


def downgrade():
    op.drop_index("ix_orders_email", "orders")
'''

LARGE = {"rows": 5_000_000, "bytes": 3 << 30}


@pytest.fixture
def alembic_env(tmp_path):
    """tmp_path/alembic.ini + tmp_path/alembic/ (env.py, versions/) with two revisions."""
    config = Config(str(tmp_path / "alembic.ini"))
    command.init(config, str(tmp_path / "alembic"))
    versions = tmp_path / "alembic" / "versions"
    (versions / "a1f00d_create_widgets.py").write_text(CREATE)
    (versions / "b2beef_index_orders.py").write_text(INDEX)
    sizes = tmp_path / "sizes.json"
    sizes.write_text(json.dumps({"tables": {"orders": LARGE}}))
    return tmp_path


def _check(capsys, *argv):
    code = main(["schema", "check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("dialect", ["mysql", "postgres"])
def test_risky_revision_is_flagged_with_its_file(alembic_env, capsys, dialect):
    code, out, _ = _check(capsys, "--alembic", str(alembic_env / "alembic"), "--dialect",
                          dialect, "--sizes", str(alembic_env / "sizes.json"), "--format",
                          "json")
    report = json.loads(out)
    assert code == 1
    flagged = [f for f in report["findings"] if f["verdict"] == "review"]
    assert len(flagged) == 1, flagged
    finding = flagged[0]
    assert finding["table"] == "orders"
    assert finding["file"].endswith("alembic/versions/b2beef_index_orders.py")
    assert finding["line"] == INDEX.splitlines().index("def upgrade():") + 1
    assert "CREATE INDEX ix_orders_email ON orders (email)" in finding["statement"]
    assert finding["alternative"]
    # the table created by the first revision is new and small, in the later revision too
    widgets = [f for f in report["findings"] if f["table"] == "widgets"]
    assert {f["file"].rsplit("/", 1)[-1] for f in widgets} == {
        "a1f00d_create_widgets.py", "b2beef_index_orders.py"}
    assert all(f["verdict"] == "safe" for f in widgets)
    assert any(f["table_size"]["source"] == "new" for f in widgets)
    assert any(p.endswith("b2beef_index_orders.py") for p in report["files"])


def test_ini_with_template_url_and_revision_range(alembic_env):
    """The template's placeholder URL is replaced by the dialect's; a range renders only its
    revisions."""
    rendered = render_alembic(alembic_env / "alembic.ini", "postgres", "a1f00d:b2beef")
    assert "CREATE INDEX ix_orders_email" in rendered.sql
    assert "CREATE TABLE widgets" not in rendered.sql
    assert [r.revision for r in rendered.revisions] == ["b2beef"]
    reviewer = Reviewer(ReviewSettings("postgres"),
                        SizesFile(data={"tables": {"orders": LARGE, "widgets": LARGE}}))
    review_alembic(reviewer, alembic_env, "a1f00d:b2beef")  # directory holding alembic.ini
    flagged = reviewer.report.needs_review
    assert [f.table for f in flagged] == ["orders"]
    assert flagged[0].file.endswith("b2beef_index_orders.py")


def test_small_table_index_passes(alembic_env, capsys):
    (alembic_env / "sizes.json").write_text(json.dumps({"tables": {"orders": {"rows": 10,
                                                                               "bytes": 8192}}}))
    code, out, _ = _check(capsys, "--alembic", str(alembic_env / "alembic"), "--dialect",
                          "mariadb", "--sizes", str(alembic_env / "sizes.json"))
    assert code == 0, out


def test_not_an_alembic_dir_exits_2(tmp_path, capsys):
    (tmp_path / "0001.sql").write_text("CREATE TABLE t (id int);\n")
    code, out, err = _check(capsys, "--alembic", str(tmp_path), "--dialect", "mysql")
    assert code == 2
    assert f"{tmp_path}: not an Alembic environment" in err
    code, _, err = _check(capsys, "--alembic", str(tmp_path / "nope"), "--dialect", "mysql")
    assert code == 2 and "no such file or directory" in err
    code, _, err = _check(capsys, "--dialect", "mysql")
    assert code == 2 and "--alembic" in err


def test_failing_revision_names_its_file(alembic_env):
    broken = alembic_env / "alembic" / "versions" / "c3dead_broken.py"
    broken.write_text(INDEX.replace('"b2beef"', '"c3dead"', 1)
                      .replace('down_revision = "a1f00d"', 'down_revision = "b2beef"')
                      .replace('    op.create_index(', '    raise RuntimeError("boom")\n'
                               '    op.create_index('))
    with pytest.raises(GreenlightError) as info:
        render_alembic(alembic_env / "alembic", "mysql")
    assert f"{broken}:" in str(info.value) and "boom" in str(info.value)
    with pytest.raises(UsageError, match="cannot render"):
        render_alembic(alembic_env / "alembic", "mysql", "base:nosuchrev")
