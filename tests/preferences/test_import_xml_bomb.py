"""An XLSX upload is parsed without expanding XML entities (defusedxml): a "billion laughs" bomb or an
entity that smuggles in a value is refused with a clear error and imports nothing."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from import_export.formats.base_formats import XLSX

from preferences.models import Contact

pytestmark = pytest.mark.django_db

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

BILLION_LAUGHS = (
    '<!DOCTYPE sst [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">' for n in range(1, 10))
    + "]>"
)
# Small enough for expat's own amplification limit to let it through: only refusing entities stops it.
SMUGGLED = '<!DOCTYPE sst [<!ENTITY address "smuggled@example.com">]>'


def workbook(doctype: str, cell: str) -> bytes:
    """Return a minimal XLSX file whose shared strings carry `doctype` and `cell` (an email column)."""
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="contacts" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            'Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/sharedStrings.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?>{doctype}'
            '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2" uniqueCount="2">'
            f"<si><t>email</t></si><si><t>{cell}</t></si></sst>"
        ),
        "xl/worksheets/sheet1.xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
            '<row r="2"><c r="A2" t="s"><v>1</v></c></row>'
            "</sheetData></worksheet>"
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    return client


def xlsx_format_index(staff) -> str:
    """Return the value of the XLSX choice of the admin's import form."""
    form = staff.get("/admin/preferences/contact/import/").context["form"]
    return next(str(value) for value, label in form.fields["format"].choices if label == XLSX().get_title())


def test_a_plain_xlsx_file_imports(staff):
    """The workbook builder makes a file the import reads: the refusals below are about the entities."""
    upload = SimpleUploadedFile("contacts.xlsx", workbook("", "plain@example.com"), content_type=XLSX_TYPE)
    response = staff.post(
        "/admin/preferences/contact/import/", {"import_file": upload, "format": xlsx_format_index(staff)}
    )

    assert response.status_code == 200
    assert "confirm_form" in response.context, response.content.decode()[:2000]


@pytest.mark.parametrize(("doctype", "cell"), [(BILLION_LAUGHS, "&lol9;"), (SMUGGLED, "&address;")])
def test_an_xlsx_with_xml_entities_is_refused_with_an_error_and_imports_nothing(staff, doctype, cell):
    upload = SimpleUploadedFile("contacts.xlsx", workbook(doctype, cell), content_type=XLSX_TYPE)
    response = staff.post(
        "/admin/preferences/contact/import/", {"import_file": upload, "format": xlsx_format_index(staff)}
    )

    assert response.status_code in (200, 400)
    assert "confirm_form" not in (response.context or {}), "the file was parsed and offered for import"
    form = response.context["form"]
    assert form.errors, "no error shown to the marketer"
    assert not Contact.objects.exists()
