"""The counter web page: a stdlib HTTP server with Server-Sent Events, static HTML/JS/CSS (no build
step), and the registry of scanners it shows. See scanbridge.web.server.CounterWeb."""
