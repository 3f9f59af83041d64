"""The signed report as CSV (one row per figure) and as a PDF a person reads.

Both are renderings of a signed report document (app/audit_report.py): the JSON file stays the
thing a third party verifies; the exports carry its fingerprint so a reader can tell which one
they came from. The PDF has a cover table (channel, period, ledger, signer), a chart of upward
and downward referrals per hospital, one of a second indicator, and every figure in a table.
Chinese headings use reportlab's built-in STSong-Light CID font: no font file is shipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

CSV_COLUMNS = ("indicator", "hospital", "period", "value", "unit", "sources")
CJK_FONT = "STSong-Light"
CHART_PAIR = ("referrals.upward", "referrals.downward")  # the tiered-care picture first
PAGE_FIGURES_HEADER = ("指标 indicator", "医院 hospital", "值 value", "单位 unit", "来源 sources")


def csv_bytes(document: Mapping[str, Any]) -> bytes:
    """One row per figure; `sources` is the cited tx ids separated by spaces; UTF-8 with a
    BOM so spreadsheet programs read Chinese correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for figure in document["report"]["figures"]:
        writer.writerow(
            [
                figure["indicator"],
                figure["hospital"] or "(region)",
                figure["period"],
                figure["value"],
                figure["unit"],
                " ".join(s["txId"] for s in figure["sources"]),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode()


def pdf_bytes(document: Mapping[str, Any], fingerprint: str) -> bytes:
    """The report as a PDF: cover table, charts, every figure (sources counted, not listed)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    title = ParagraphStyle("title", fontName=CJK_FONT, fontSize=16, leading=22)
    text = ParagraphStyle("text", fontName=CJK_FONT, fontSize=9, leading=13)
    report, signer = document["report"], document["signer"]
    grid = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), CJK_FONT, 8),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )
    cover = Table(
        [
            ("通道 channel", report["channel"]),
            ("期间 period", report["period"]),
            (
                "账本 ledger",
                f"height {report['ledger']['height']}, last block "
                f"{report['ledger']['lastBlockHash'][:32]}…",
            ),
            ("签署 signed by", f"{signer['mspId']} at {signer['signedAt']}"),
            ("指纹 fingerprint", fingerprint),
        ],
        colWidths=(40 * mm, 130 * mm),
    )
    cover.setStyle(grid)
    rows = [PAGE_FIGURES_HEADER] + [
        (f["indicator"], f["hospital"] or "全区 region", f["value"] or "—", f["unit"],
         str(len(f["sources"])))
        for f in report["figures"]
    ]  # fmt: skip
    figures = Table(rows, colWidths=(60 * mm, 40 * mm, 25 * mm, 20 * mm, 20 * mm), repeatRows=1)
    figures.setStyle(grid)
    story: list[Any] = [
        Paragraph("医联体审计报告 — Medical alliance audit report", title),
        Spacer(1, 4 * mm),
        cover,
        Spacer(1, 6 * mm),
        Paragraph(
            "每个数字都可由持有账本者复核: medalliance audit verify-report REPORT.json --ledger "
            "DIR re-derives every figure from the raw blocks and checks every cited transaction.",
            text,
        ),
        Spacer(1, 4 * mm),
    ]
    for chart in _charts(report["figures"], report.get("hospitals", [])):
        story += [chart, Spacer(1, 4 * mm)]
    story += [Paragraph("全部指标 All figures", title), Spacer(1, 2 * mm), figures]
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=f"audit report {report['period']}").build(story)
    return out.getvalue()


def _charts(figures: Sequence[Mapping[str, Any]], hospitals: Sequence[str]) -> list[Any]:
    """Bar charts per hospital: the CHART_PAIR indicators together, then the first other
    count indicator; none when the report has no per-hospital counts."""
    counts: dict[str, dict[str, float]] = {}
    for figure in figures:
        if figure["unit"] == "count" and figure["hospital"] and figure["value"]:
            per = counts.setdefault(figure["indicator"], {})
            per[figure["hospital"]] = float(figure["value"])
    if not counts or not hospitals:
        return []
    first = [name for name in CHART_PAIR if name in counts] or [sorted(counts)[0]]
    rest = sorted(name for name in counts if name not in first)
    charts = [_bar_chart(first, counts, hospitals)]
    if rest:
        charts.append(_bar_chart(rest[:1], counts, hospitals))
    return charts


def _bar_chart(
    names: Sequence[str], counts: Mapping[str, Mapping[str, float]], hospitals: Sequence[str]
) -> Any:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.legends import Legend
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors

    palette = (colors.HexColor("#3b6ea5"), colors.HexColor("#e39b3c"))
    drawing = Drawing(480, 210)
    drawing.add(String(10, 195, " / ".join(names) + " per hospital", fontName=CJK_FONT,
                       fontSize=10))  # fmt: skip
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 40, 40, 330, 140
    chart.data = [tuple(counts[name].get(h, 0.0) for h in hospitals) for name in names]
    chart.categoryAxis.categoryNames = [h.removesuffix("MSP") for h in hospitals]
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    for index in range(len(names)):
        chart.bars[index].fillColor = palette[index % len(palette)]
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = 385, 150
    legend.fontSize = 7
    legend.colorNamePairs = [(palette[i % len(palette)], n) for i, n in enumerate(names)]
    drawing.add(legend)
    return drawing
