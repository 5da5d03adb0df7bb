"""The text of a PDF, page by page, with pypdf (pure Python: no system library to install)."""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from application.knowledge import ExtractedText, Unreadable

# pypdf logs every oddity of a malformed file as a warning; the failure reason says enough.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class PypdfText:
    def extract(self, data: bytes) -> ExtractedText:
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise Unreadable("the PDF is encrypted")
            pages = [page.extract_text() or "" for page in reader.pages]
        except Unreadable:
            raise
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as error:
            raise Unreadable(str(error) or type(error).__name__) from None
        starts: list[int] = []
        text = ""
        for page in pages:
            if text:
                text += "\n\n"
            starts.append(len(text))
            text += page
        return ExtractedText(text, tuple(starts))
