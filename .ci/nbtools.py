#!/usr/bin/env python
"""Project checks behind `make test` and `make docs-check` (run with the project's virtual environment).

  nbtools.py test [--docs]   consistency checks + every notebook's tests (nbdev's test_nb); ends with 'N passed, N failed'
  nbtools.py readme          write README.md from nbs/index.ipynb (what nbdev_readme does with Quarto)
  nbtools.py docs            HTML page per notebook without Quarto, into _docs_check/ (nbdev processing + nbconvert)
  nbtools.py docs-assert     module pages show every exported name and docstring; every tutorial and model page has a figure;
                             no stored output is an error; the Quarto config renders stored outputs (never re-executes)
  nbtools.py execute [REGEX] run notebooks top to bottom in place, keeping their outputs (slow/cuda cells too with
                             GENOMORPH_EXEC_FLAGS=slow,cuda; flagged cells by id too with GENOMORPH_EXEC_CELLS=ID[,ID];
                             GENOMORPH_EXEC_WORKERS=2 runs two at once); prints each notebook's time against its budget
  nbtools.py screenshot      headless Chromium screenshot of _docs_check/index.html
"""
import sys, os, re, json, time, shutil, subprocess, tempfile, filecmp, importlib, html as _html
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, LIB, OUT = ROOT/'nbs', ROOT/'genomorph', ROOT/'_docs_check'
# notebooks at any depth find the shared real data beside the checkout (../shared/data) without a relative path of their own
if 'GENOMORPH_SHARED' not in os.environ and (ROOT.parent/'shared'/'data').is_dir(): os.environ['GENOMORPH_SHARED'] = str(ROOT.parent/'shared'/'data')
os.chdir(ROOT)

def _nbs():
    return sorted(p for p in NBS.rglob('*.ipynb') if not any(part.startswith(('.', '_')) for part in p.relative_to(NBS).parts))

def _tree_same(a, b):
    c = filecmp.dircmp(a, b, ignore=['__pycache__'])
    def walk(c): return not (c.left_only or c.right_only or c.diff_files or c.funny_files) and all(walk(s) for s in c.subdirs.values())
    return walk(c)

# ---------------------------------------------------------------- README
def readme_text():
    nb = json.loads((NBS/'index.ipynb').read_text())
    out = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] != 'markdown': continue
        src = re.sub(r'^> (.*)$', r'> \1', src, flags=re.M)
        out.append(src.strip())
    note = "<!-- generated from nbs/index.ipynb by `make readme`: edit the notebook, not this file -->"
    return note + '\n\n' + '\n\n'.join(out) + '\n'

def cmd_readme(check=False):
    txt = readme_text(); p = ROOT/'README.md'
    if check: return p.exists() and p.read_text() == txt
    p.write_text(txt); print('wrote README.md'); return True

# ---------------------------------------------------------------- consistency checks
def _in_copy(cmd):
    "Run an nbdev command on a temporary copy of the project; return (copy's nbs, copy's lib, result)."
    d = Path(tempfile.mkdtemp())
    for f in ('settings.ini', 'setup.py', 'pyproject.toml', '_quarto.yml'):
        if (ROOT/f).exists(): shutil.copy2(ROOT/f, d/f)
    shutil.copytree(NBS, d/'nbs', symlinks=True); shutil.copytree(LIB, d/'genomorph', ignore=shutil.ignore_patterns('__pycache__'))
    r = subprocess.run([str(Path(sys.executable).parent/cmd)], cwd=d, capture_output=True, text=True)
    return d, r

def check_clean():
    "nbdev_clean changes nothing"
    d, r = _in_copy('nbdev_clean')
    same = _tree_same(d/'nbs', NBS); shutil.rmtree(d)
    return same and r.returncode == 0, ('notebooks are not clean: run `nbdev_clean` and commit' if not same else r.stderr[-500:])

def check_export():
    "nbdev_export changes nothing"
    d, r = _in_copy('nbdev_export')
    same = _tree_same(d/'genomorph', LIB); shutil.rmtree(d)
    return same and r.returncode == 0, ('genomorph/ is out of sync with nbs/: run `nbdev_export` and commit' if not same else r.stderr[-500:])

def check_readme():
    "README.md is generated from nbs/index.ipynb"
    return cmd_readme(check=True), 'README.md is out of date: run `make readme` and commit'

def check_sidebar():
    "every notebook is in nbs/sidebar.yml"
    side = (NBS/'sidebar.yml').read_text()
    missing = [str(p.relative_to(NBS)) for p in _nbs() if str(p.relative_to(NBS)) not in side]
    return not missing, f'notebooks missing from nbs/sidebar.yml: {missing}'

# the notebooks whose tests took longest on 2 CPU cores (CI, 2026-12-03), started first so that no long one is left for the end
TEST_FIRST = ('tutorials/image_generation', 'tutorials/spot_regression', '45_exp_slides', 'tutorials/diffusion', '17_clip', 'tutorials/decisions',
              '50_cli', 'tutorials/if_you_used_genes2morphology', '43_exp_heads', '46_exp_apply', '60_robustness')

def _longest_first(nbs):
    "`nbs` with the `TEST_FIRST` notebooks first, in that order, then the rest in their order."
    rank = lambda p: TEST_FIRST.index(k) if (k := str(p.relative_to(NBS).with_suffix(''))) in TEST_FIRST else len(TEST_FIRST)
    return sorted(nbs, key=rank)

def _test_one(path):
    "nbdev_test on one notebook, in its own process; returns (name, ok, seconds, output tail)."
    cmd = [str(Path(sys.executable).parent/'nbdev_test'), '--path', str(path), '--n_workers', '0']
    flags = os.environ.get('GENOMORPH_TEST_FLAGS')  # e.g. "slow" runs the cells flagged slow too
    if flags: cmd += ['--flags', flags]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return str(path.relative_to(ROOT)), r.returncode == 0, time.perf_counter() - t0, (r.stdout + r.stderr)[-3000:]

def cmd_test(docs=False, n_workers=None):
    results = []
    def report(name, ok, secs=None, why=''):
        results.append(ok)
        t = f' ({secs:.1f} s)' if secs is not None else ''
        print(f"{'PASS' if ok else 'FAIL'} {name}{t}" + ('' if ok else f'\n     {why}'), flush=True)
    for chk in (check_export, check_clean, check_readme, check_sidebar):
        t0 = time.perf_counter(); ok, why = chk(); report(chk.__doc__, ok, time.perf_counter()-t0, why)
    nbs = _nbs()
    want = os.environ.get('GENOMORPH_TEST_ONLY')
    if want: nbs = [p for p in nbs if re.search(want, str(p))]
    n_workers = n_workers or int(os.environ.get('GENOMORPH_TEST_WORKERS', min(2, os.cpu_count() or 1)))
    # one thread per torch worker: two notebook processes share the machine's cores
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1)//n_workers)))
    os.environ['MPLBACKEND'] = 'Agg'
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(n_workers) as ex:
        for name, ok, secs, out in ex.map(_test_one, _longest_first(nbs)):
            report(f'nbdev_test {name}', ok, secs, out.replace('\n', '\n     '))
    if docs:
        t0 = time.perf_counter(); ok, why = _docs_and_assert(); report('docs pages build and show every exported name', ok, time.perf_counter()-t0, why)
    npass, nfail = sum(results), len(results) - sum(results)
    print(f"\n{npass} passed, {nfail} failed")
    return 0 if nfail == 0 else 1

# ---------------------------------------------------------------- docs without Quarto
def _sidebar_groups():
    import yaml
    side = yaml.safe_load((NBS/'sidebar.yml').read_text())['website']['sidebar']['contents']
    groups = []
    for item in side:
        if isinstance(item, str): groups.append(('', [item]))
        else: groups.append((item['section'], item['contents']))
    return groups

def _page_name(nb_rel): return str(Path(nb_rel).with_suffix('.html')).replace('/', '__')

def _title(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    for c in nb['cells']:
        m = re.search(r'^# (.+)$', ''.join(c['source']), re.M) if c['cell_type'] == 'markdown' else None
        if m: return m.group(1).strip()
    return Path(nb_path).stem

def _nav():
    parts = ['<nav style="font-family:sans-serif;padding:8px 16px;background:#2780e3;color:white">']
    parts.append('<b style="margin-right:16px">genomorph docs</b>')
    for sec, items in _sidebar_groups():
        links = ' · '.join(f'<a style="color:white" href="{_page_name(i)}">{_html.escape(_title(NBS/i))}</a>' for i in items if (NBS/i).exists())
        parts.append(f'<span style="margin-right:18px">{(_html.escape(sec)+": ") if sec else ""}{links}</span>')
    return ''.join(parts) + '</nav>'

def cmd_docs():
    "Process notebooks as nbdev does for Quarto (show_doc cells executed against the package), then convert to HTML."
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.processors import FilterDefaults
    from nbdev.serve_drv import exec_nb
    import nbdev.doclinks
    refresh_quarto_yml(); nbdev.doclinks._build_modidx()
    cache = ROOT/'_proc'
    if cache.exists(): shutil.rmtree(cache)
    failed = []
    os.environ['IN_TEST'] = '1'
    only = os.environ.get('GENOMORPH_DOCS_ONLY')
    for p in [p for p in _nbs() if not only or re.search(only, str(p))]:  # one notebook at a time, so one broken notebook names itself instead of stopping the rest
        dst = cache/p.relative_to(NBS); dst.parent.mkdir(parents=True, exist_ok=True)
        cwd = os.getcwd(); os.chdir(p.parent)
        try: exec_nb(p, dst, FilterDefaults)
        except Exception as e: failed.append(f'{p.relative_to(NBS)}: {str(e).splitlines()[0][:200]}')
        finally: os.chdir(cwd)
    if failed: raise RuntimeError('nbdev could not process ' + '; '.join(failed))
    if OUT.exists(): shutil.rmtree(OUT)
    OUT.mkdir()
    import nbformat
    from nbconvert import HTMLExporter
    ex = HTMLExporter(template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    nav = _nav()
    pages = []
    for p in [p for p in _nbs() if not only or re.search(only, str(p))]:
        rel = p.relative_to(NBS)
        nb = nbformat.read(cache/rel, as_version=4)
        # cells nbdev hides (exported code, #| hide, echo: false inputs) are hidden in the HTML as Quarto would
        for c in nb.cells:
            src = c.get('source', '')
            if c.cell_type == 'code' and (not src.strip() or re.search(r'^#\|\s*(hide|echo:\s*false)', src, re.M)):
                c.metadata.setdefault('jupyter', {})['source_hidden'] = True
                c.metadata['transient'] = {'remove_source': True}
            if c.cell_type == 'raw' and src.startswith('---'):  # Quarto front matter -> a visible title and summary
                import yaml
                fm = yaml.safe_load(src.strip().strip('-')) or {}
                c.cell_type, c.source = 'markdown', f"# {fm.get('title', rel.stem)}\n\n> {fm.get('description', '')}"
                c.pop('outputs', None); c.pop('execution_count', None)
        body, _ = ex.from_notebook_node(nb)
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, body, count=1)
        body = re.sub(r'\{target=(&quot;|")_blank(&quot;|")[^}]*\}', '', body)  # Quarto link attributes that plain HTML shows as text
        (OUT/_page_name(rel)).write_text(body)
        pages.append(_page_name(rel))
    print(f'wrote {len(pages)} pages to {OUT}')
    return pages

# ---------------------------------------------------------------- execute notebooks in place (`make execute`)
MODEL_PAGES = ('10_spot', '11_diffusion', '12_heads', '13_conformal', '17_clip', '18_gan', '19_imagediffusion')   # each must show a figure
FIGURE_PAGES = MODEL_PAGES + ('00a_jobs', '01_synth', '02_datasets', '03_wsi', '04_pp', '04a_tiling', '05_features', '05a_encoders', '06_metrics', '07_data', '08_layers', '09_model', '15_imagemetrics', '16_imagegen_base', '40_exp_data', '41_exp_spot', '42_exp_diffusion', '43_exp_heads', '45_exp_slides', '46_exp_apply', '50_cli')   # module pages whose figures must not silently disappear
EXEC_BUDGET_S = {'tutorials/decisions': 2400, '43_exp_heads': 1500, 'tutorials/spot_regression': 1500, 'tutorials/real_data': 900, 'tutorials/image_generation': 3600}   # the rest: EXEC_DEFAULT_S
EXEC_DEFAULT_S = 600

def _machine():
    import platform
    gpu = 'no GPU'
    try:
        import torch
        if torch.cuda.is_available(): gpu = torch.cuda.get_device_name(0)
    except Exception: pass
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}"

def _cell_flags(src):
    return {w for l in src.splitlines() if l.startswith('#|') for w in l[2:].split()}

def exec_one(path, flags=()):
    "Execute one notebook in place with execnb (cwd = its folder); flagged cells run only when their flag is given."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    path = Path(path).absolute(); nb = read_nb(path); flags = set(flags)
    os.chdir(path.parent); os.environ['MPLBACKEND'] = 'Agg'
    shared = os.environ.get('GENOMORPH_SHARED')
    if shared and Path(shared).is_absolute(): os.environ['GENOMORPH_SHARED'] = os.path.relpath(shared, path.parent)   # stored outputs show paths relative to the notebook, not to this machine
    sh = CaptureShell(); stamp = f"(ran on {_machine()}, {time.strftime('%Y-%m-%d')})"
    ids = {i for i in os.environ.get('GENOMORPH_EXEC_CELLS', '').split(',') if i}   # flagged cells to run although their flag is not given
    flagged = {c.get('id') for c in nb.cells if c.cell_type == 'code' and _cell_flags(c.source) & {'slow', 'cuda'}}
    if ids and not ids & flagged: print(f"note: {path.name} has no slow/cuda cell with id {', '.join(sorted(ids))}; only its other cells run", file=sys.stderr)
    for c in nb.cells:
        if c.cell_type != 'code' or not c.source.strip(): continue
        fl = _cell_flags(c.source)
        if re.search(r'^#\|\s*eval:\s*false', c.source, re.M): continue
        if any(f in fl and f not in flags for f in ('slow', 'cuda')) and c.get('id') not in ids: continue   # keeps the outputs of its last run
        c.outputs = []   # execnb keeps the old outputs of a cell whose new run prints nothing
        sh.cell(c)
        if fl & {'slow', 'cuda'}: c.outputs.append({'output_type': 'stream', 'name': 'stdout', 'text': [stamp + '\n']})
        err = [o for o in c.outputs if o.get('output_type') == 'error']
        if err:
            write_nb(nb, path); raise RuntimeError(f"{path.name}: {err[0].get('ename')}: {err[0].get('evalue')}\n{c.source[:300]}")
    write_nb(nb, path)
    shrink_figures(path)

def shrink_figures(path, max_px=1400, quality=82):
    "Store a notebook's PNG figures as JPEG no wider than `max_px` (white background): pages stay light, figures stay readable."
    import base64, io
    from PIL import Image
    nb = json.loads(Path(path).read_text()); n = 0
    for c in nb['cells']:
        for o in c.get('outputs', []):
            d = o.get('data', {})
            if 'image/png' not in d: continue
            im = Image.open(io.BytesIO(base64.b64decode(d['image/png'])))
            if im.mode in ('RGBA', 'LA', 'P'):
                im = im.convert('RGBA'); bg = Image.new('RGB', im.size, 'white'); bg.paste(im, mask=im.split()[-1]); im = bg
            else: im = im.convert('RGB')
            if im.width > max_px: im = im.resize((max_px, round(im.height * max_px / im.width)), Image.LANCZOS)
            buf = io.BytesIO(); im.save(buf, format='JPEG', quality=quality, optimize=True)
            del d['image/png']; d['image/jpeg'] = base64.b64encode(buf.getvalue()).decode() + '\n'
            md = o.setdefault('metadata', {}); md.pop('image/png', None); n += 1
    if n: Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return n

def cmd_execute(only=None):
    "Run every notebook (or those matching `only`) in its own process, in place; then nbdev_clean (outputs kept)."
    flags = [f for f in os.environ.get('GENOMORPH_EXEC_FLAGS', '').split(',') if f]
    nbs = [p for p in _nbs() if not only or re.search(only, str(p))]
    workers = int(os.environ.get('GENOMORPH_EXEC_WORKERS', 1))
    if workers > 1: os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // workers)))
    def one(p):
        rel = str(p.relative_to(NBS).with_suffix('')); budget = EXEC_BUDGET_S.get(rel, EXEC_DEFAULT_S)
        t0 = time.perf_counter()
        try:
            r = subprocess.run([sys.executable, __file__, '_exec', str(p), *flags], capture_output=True, text=True, timeout=3 * budget)
            ok, why = r.returncode == 0, (r.stderr or r.stdout)[-800:]
            if ok: why = '\n'.join(l for l in r.stderr.splitlines() if l.startswith('note: '))
        except subprocess.TimeoutExpired: ok, why = False, f'killed after {3 * budget} s'
        return rel, ok, why, time.perf_counter() - t0, budget
    bad = 0
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers) as ex:
        for rel, ok, why, dt, budget in ex.map(one, nbs):
            bad += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {rel}: {dt:.0f} s (budget {budget} s){'  OVER BUDGET' if dt > budget else ''}" + ('\n     ' + why.replace('\n', '\n     ') if why else ''), flush=True)
    subprocess.run([str(Path(sys.executable).parent/'nbdev_clean')], cwd=ROOT)
    return 1 if bad else 0

def _stored_errors(p):
    "Stored outputs of a notebook that are errors or tracebacks."
    nb = json.loads(p.read_text()); bad = []
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            txt = ''.join(o.get('text', '')) if o.get('output_type') == 'stream' else ''
            if o.get('output_type') == 'error' or 'Traceback (most recent call last)' in txt: bad.append(i)
    return bad

def _quarto_renders_stored():
    "The Quarto configuration never re-executes notebooks on a docs build."
    import yaml
    for f in (ROOT/'_quarto.yml', NBS/'_quarto.yml', NBS/'nbdev.yml'):
        if not f.exists(): continue
        cfg = yaml.safe_load(f.read_text()) or {}
        ex = cfg.get('execute') or {}
        if ex.get('enabled') is True or ex.get('eval') is True: return f'{f.relative_to(ROOT)} sets execute: enabled/eval: true (a docs build would re-run the notebooks)'
    return ''

def figure_counts():
    "Images in each built page (after `docs`)."
    return {p.name: len(re.findall(r'<img\b', p.read_text())) for p in sorted(OUT.glob('*.html'))}

def cmd_docs_assert():
    "Every module page shows its exported names and docstrings; every tutorial and model page has a figure; no stored error; Quarto renders stored outputs."
    import ast
    problems = []
    figs = figure_counts()
    for p in _nbs():
        rel = p.relative_to(NBS); page = _page_name(rel)
        if (rel.parts[0] == 'tutorials' or rel.stem in FIGURE_PAGES) and figs.get(page, 0) == 0: problems.append(f'{page}: no figure')
        if _stored_errors(p): problems.append(f'{rel}: stored error output in cells {_stored_errors(p)[:5]}')
    q = _quarto_renders_stored()
    if q: problems.append(q)
    print('figures per page: ' + ', '.join(f'{k.replace(".html", "")} {v}' for k, v in figs.items()) + f' (total {sum(figs.values())})')
    for p in _nbs():
        src = p.read_text()
        m = re.search(r'#\|\s*default_exp\s+([\w.]+)', src)
        if not m: continue
        page = OUT/_page_name(p.relative_to(NBS))
        if not page.exists(): problems.append(f'missing page {page.name}'); continue
        norm = lambda t: re.sub(r'\s+', ' ', re.sub(r'[`*_]', '', t))  # markdown marks are rendered away
        text = norm(_html.unescape(re.sub(r'<[^>]+>', '', page.read_text())))
        mod = importlib.import_module(f'genomorph.{m.group(1)}')
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name)
            if not callable(obj): continue
            if getattr(obj, '__module__', mod.__name__) != mod.__name__: continue   # re-exported from another module: documented on that module's page
            if norm(name) not in text: problems.append(f'{page.name}: no {name}'); continue
            doc = norm((getattr(obj, '__doc__', None) or '').strip().split('\n')[0]).strip()
            if doc and doc not in text: problems.append(f'{page.name}: docstring of {name} not shown ({doc[:40]!r})')
    for pr in problems: print('  ', pr)
    return not problems, '; '.join(problems[:5])

def _docs_and_assert():
    try: cmd_docs()
    except Exception as e: return False, f'docs build failed: {type(e).__name__}: {e}'
    return cmd_docs_assert()

def cmd_screenshot():
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if not exe: print('Chromium not found: install it with `apt-get install -y chromium` (Debian), then rerun `make docs-check`'); return 1
    shot = OUT/'index.png'
    with tempfile.TemporaryDirectory() as prof:
        cmd = [exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', f'--user-data-dir={prof}', '--hide-scrollbars',
               '--window-size=1280,1600', f'--screenshot={shot}', (OUT/'index.html').as_uri()]
        subprocess.run(cmd, capture_output=True, timeout=120)
    print(f'screenshot: {shot}' if shot.exists() else 'screenshot failed'); return 0 if shot.exists() else 1

if __name__ == '__main__':
    a = sys.argv[1:] or ['test']
    if a[0] == 'test': sys.exit(cmd_test(docs='--docs' in a))
    if a[0] == 'readme': cmd_readme(); sys.exit(0)
    if a[0] == 'docs': cmd_docs(); sys.exit(0)
    if a[0] == 'docs-assert':
        ok, _ = cmd_docs_assert(); print('docs pages OK' if ok else 'docs pages incomplete'); sys.exit(0 if ok else 1)
    if a[0] == 'screenshot': sys.exit(cmd_screenshot())
    if a[0] == 'execute': sys.exit(cmd_execute(a[1] if len(a) > 1 else None))
    if a[0] == '_exec': exec_one(a[1], a[2:]); sys.exit(0)
    if a[0] == 'shrink': print(sum(shrink_figures(p) for p in _nbs()), 'figures stored as JPEG'); sys.exit(0)
    print(__doc__); sys.exit(2)
