"""The report's document model rendered as HTML: the Markdown marks it uses, escaping, alignment."""

from pathlib import Path

from brats_ssl.report.document import Document, Link, Section, Table, render_html, render_markdown


def _document():
    table = Table(
        ["method", "difference", "answer", "run"],
        [
            [
                "ours",
                "+0.028 [+0.005, +0.060] **resolved**",
                "**yes**: higher",
                Link("r", "r/report.md", "r/report.html"),
            ],
            ["<script>", "-", "not shown", "x"],
            ["mean", "", "", ""],
        ],
        caption="see `comparisons.csv`",
    )
    return Document("t", [Section("S", [table, "run `--seeds 0 1` for **more**"])])


def test_html_keeps_the_marks_as_markup_and_escapes_the_rest():
    page = render_html(_document())
    assert "**" not in page and "`" not in page
    assert "<strong>resolved</strong>" in page and "<strong>yes</strong>: higher" in page
    assert "<code>comparisons.csv</code>" in page and "<code>--seeds 0 1</code> for <strong>more</strong>" in page
    assert "&lt;script&gt;" in page and "<script>" not in page


def test_html_aligns_words_left_and_numbers_right():
    page = render_html(_document())
    assert (
        '<th class="text">method</th><th>difference</th><th class="text">answer</th><th class="text">run</th>' in page
    )
    assert '<td>-</td><td class="text">not shown</td>' in page


def test_markdown_keeps_the_marks_as_they_are():
    text = render_markdown(_document(), Path("."))
    assert "| ours | +0.028 [+0.005, +0.060] **resolved** | **yes**: higher | [r](r/report.md) |" in text
    assert "*see `comparisons.csv`*" in text
