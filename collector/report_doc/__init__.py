"""The report an enterprise sends upward: its key-process digitalization rate
(关键工序数控化率) over a period, measured from the stored results beside the declared one,
as an XLSX workbook and a printable PDF, in English or Simplified Chinese.

One job per module: ``period.py`` (calendar periods, trend buckets, file names),
``queries.py`` (the InfluxQL read: stored ``kpi_rate`` and ``process_status`` only, summed
by InfluxDB), ``figures.py`` (the figures, pure, and their SHA-256 digest), ``document.py``
(the figures with names and the reproduction notes: what the API answers), ``view.py``
(texts and formatting shared by the renderers), ``chart.py`` (the trend as SVG),
``xlsx.py`` and ``pdf.py`` (the files), ``worker.py`` (the one thread the CPU-bound parts run
in), ``cli.py`` (``kpi report-doc``, a client of the API). docs/report-doc.md describes the report.
"""

DIGEST_HEADER = "X-Report-Digest"
"""The HTTP header every ``/report-doc`` answer carries the figures' SHA-256 in."""
