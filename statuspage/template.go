package statuspage

// pageHTML is the whole page: inline CSS and SVG, no script, no external
// asset, so it opens from a file or a ticket attachment as it is. Every
// mark in the drawing has a class, data attributes and a <title> (its
// text on hover), and the tables below say the same in words.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>binarc: {{.Cluster}}: what can be restored</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1f23; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
svg { width: 100%; background: #fafbfc; border: 1px solid #d1d5da; }
.timeline rect { fill: #c8e1ff; } .timeline text, .axis text { font-size: 11px; fill: #444; }
.window rect { fill: #28a745; opacity: .55; } .window.cut rect { fill: #e36209; }
.join line { stroke: #6f42c1; stroke-width: 2; stroke-dasharray: 4 2; } .join.broken line { stroke: #d73a49; }
.snapshot circle { fill: #0366d6; stroke: #fff; } .snapshot.incomplete circle { fill: #959da5; }
.gap rect { fill: #d73a49; }
table { border-collapse: collapse; margin-top: .5em; } td, th { border: 1px solid #d1d5da; padding: 3px 8px; text-align: left; vertical-align: top; }
.problem { color: #d73a49; font-weight: 600; }
</style>
</head>
<body>
<h1>Cluster <span id="cluster">{{.Cluster}}</span>: what can be restored</h1>
<p>Made <span id="now">{{.Now}}</span>. The drawing runs from {{.From}} to {{.To}}: one row a timeline (a server the archive followed),
green the restorable windows, purple dashed lines the joins (failovers and flips), blue dots the snapshots, red the gaps.</p>
<svg id="drawing" height="{{.Height}}" role="img" aria-label="restorable window of cluster {{.Cluster}}">
<g class="axis"><text x="0.5%" y="14">{{.From}}</text><text x="99.5%" y="14" text-anchor="end">{{.To}}</text></g>
{{range .Timelines}}<g class="timeline" data-name="{{.Name}}" data-from="{{.From}}" data-to="{{.To}}">
<title>timeline {{.Name}}: {{.Source}}, {{.From}} to {{.To}} ({{.Reason}})</title>
<rect x="{{pct .X}}" y="{{.Y}}" width="{{pct .W}}" height="18" rx="3"></rect>
<text x="{{pct .X}}" y="{{add .Y 32}}">{{.Name}}</text></g>
{{end}}{{range .Windows}}<g class="window{{if .CutShort}} cut{{end}}"><title>{{.Text}}</title>
<rect x="{{pct .X}}" y="{{add .Y 5}}" width="{{pct .W}}" height="8"></rect></g>
{{end}}{{range .Joins}}<g class="join{{if .Broken}} broken{{end}}" data-timeline="{{.Timeline}}" data-previous="{{.Previous}}" data-time="{{.Time}}">
<title>{{.Text}}</title><line x1="{{pct .X}}" x2="{{pct .X}}" y1="{{.Y1}}" y2="{{add .Y2 18}}"></line></g>
{{end}}{{range .Snapshots}}<g class="snapshot{{if not .Complete}} incomplete{{end}}" data-id="{{.ID}}" data-time="{{.Time}}">
<title>{{.Text}}</title><circle cx="{{pct .X}}" cy="{{add .Y 9}}" r="6"></circle></g>
{{end}}{{range .Gaps}}<g class="gap" data-timeline="{{.Timeline}}" data-file="{{.File}}" data-time="{{.Time}}">
<title>gap in {{.File}}: {{.Text}}</title><rect x="{{pct .X}}" y="{{.Y}}" width="0.6%" height="18"></rect></g>
{{end}}</svg>

<h2>Restorable</h2>
<ul id="windows">{{range .Restorable}}<li{{if .CutShort}} class="problem"{{end}}>{{.Text}}</li>{{else}}<li class="problem">nothing yet: a restore needs a complete snapshot whose coordinates are in the archive (binarc snapshot)</li>{{end}}</ul>

<h2>Timelines</h2>
<table id="timelines"><tr><th>timeline</th><th>source</th><th>first event</th><th>last event</th><th>why it began</th></tr>
{{range .Timelines}}<tr><td>{{.Name}}</td><td>{{.Source}}</td><td>{{.From}}</td><td>{{.To}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>

<h2>Joins (failovers and flips)</h2>
<ul id="joins">{{range .Joins}}<li{{if .Broken}} class="problem"{{end}} data-time="{{.Time}}">{{.Text}}</li>{{else}}<li>none: one timeline</li>{{end}}</ul>

<h2>Snapshots</h2>
<ul id="snapshots">{{range .Snapshots}}<li{{if not .Complete}} class="problem"{{end}} data-time="{{.Time}}">{{.Time}}: {{.Text}}</li>{{else}}<li class="problem">none</li>{{end}}</ul>

<h2>Gaps</h2>
<ul id="gaps">{{range .Gaps}}<li class="problem">{{.Timeline}} {{.File}} ({{.Time}}): {{.Text}}</li>{{else}}<li>none</li>{{end}}</ul>

<h2>Archive</h2>
<p id="lag">primary: {{if .Lag}}{{.Lag}}{{else}}not asked (give --source to compare the archive with the primary){{end}}</p>
<p id="drill">last drill: {{if .LastDrill}}{{.LastDrill}}{{else}}none recorded (binarc drill){{end}}</p>
</body>
</html>
`
