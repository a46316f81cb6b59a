"""Stage 1b: planning pipeline runs (fake products) and running them (real jwst, offline)."""

import shutil
import textwrap
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.table import Table

from jwst_reffiles import cli
from jwst_reffiles.config import load_config
from jwst_reffiles.pipeline.plan import JRSTEPS, PlanError, plan_pipeline
from jwst_reffiles.pipeline.steps import STEP_INFO
from jwst_reffiles.simulate import simulate_dataset
from jwst_reffiles.stage1 import calibrate_inputs, organise_inputs

NIR_REFPIX = ("dq_init", "saturation", "ipc", "superbias", "refpix")   # group_scale: a no-op here


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    return simulate_dataset(out, subarray="SUB64P", ngroups=4, nints=1, ndarks=2, nflats=0,
                            seed=9)


def config(tmp_path, sim, modules: str, extra: str = ""):
    text = textwrap.dedent(f"""
        reflabels: [{', '.join(l.split(':')[0] for l in modules.split(';'))}]
        reftypes: [readnoise, dark, bpm, superbias]
        output:
          outrootdir: {tmp_path / 'out'}
          runID: 1
        reffile4ssb:
          default: {sim.outdir / 'reffiles'}/*.fits
        """) + extra
    for item in modules.split(";"):
        label, steps = item.split(":")
        text += f"{label}:\n  reftype: readnoise\n  imtypes: D\n  ssbsteps: '{steps}'\n"
    path = tmp_path / "main.cfg"
    path.write_text(text)
    return load_config(path)


def fake_product(src, dest, steps=None, s_keys=(), refs=None):
    """A copy of an uncal file whose header says it has had some steps."""
    shutil.copy(src, dest)
    with fits.open(dest, mode="update") as hdul:
        h = hdul[0].header
        if steps is not None:
            h[JRSTEPS] = ",".join(steps)
        for s in s_keys:
            h[STEP_INFO[s][1]] = "COMPLETE"
        for key, value in (refs or {}).items():
            h[key] = value
    return dest


def root_of(path):
    return path.name[: -len("_uncal.fits")]


# ---- planning ---------------------------------------------------------------

def test_one_run_per_file_for_prefix_levels(sim, tmp_path):
    cfg = config(tmp_path, sim, "a:refpix-;b:jump-;c:rate-;d:dq_init-")
    s1 = organise_inputs(cfg, "a,b,c,d", [str(p) for p in sim.files()])
    plan = plan_pipeline(s1)
    assert len(plan.runs) == 2                     # one per file
    assert plan.naive_runs == 8                    # 4 modules x 2 files without dedupe
    run = plan.runs[0]
    ends = ["_dq_init.fits", "_refpix.fits", "_jump.fits", "_rate.fits"]
    assert [s.dest.name.endswith(e) for s, e in zip(run.saves, ends)] == [True] * 4
    assert run.saves[-1].companions["fitopt"].name.endswith("_fitopt.fits")
    assert run.offline
    line = run.strun(plan.ssbdir)
    assert line.startswith("strun calwebb_detector1 ") and "--steps.jump.save_results=True" in line
    assert "--steps.rscd.skip=True" in line and "override_mask=" in line


def test_levels_that_are_not_prefixes_need_their_own_run(sim, tmp_path):
    cfg = config(tmp_path, sim, "a:saturation;b:refpix-")
    plan = plan_pipeline(organise_inputs(cfg, "a,b", [str(p) for p in sim.files()]))
    assert len(plan.runs) == 4
    names = {s.dest.name.split("_")[-1] for r in plan.runs for s in r.saves}
    assert names == {"steps-satura.fits", "refpix.fits"}


def test_group_scale_that_would_skip_itself_does_not_split_runs(sim, tmp_path):
    # FRMDIVSR = NFRAMES: group_scale is a no-op, so an explicit "dq_init" level
    # is the first step of "refpix-" and both come from one run per file
    cfg = config(tmp_path, sim, "a:dq_init;b:refpix-")
    plan = plan_pipeline(organise_inputs(cfg, "a,b", [str(p) for p in sim.files()]))
    assert len(plan.runs) == 2
    assert [s.level.steps for s in plan.runs[0].saves] == [("dq_init",), NIR_REFPIX]


def test_choosing_among_existing_products(sim, tmp_path):
    cfg = config(tmp_path, sim, "a:refpix-")
    s1 = organise_inputs(cfg, "a", [str(sim.files()[0])])
    src = sim.files()[0]
    ssb = s1.layout.ssbdir
    ssb.mkdir(parents=True)
    other = tmp_path / "elsewhere"
    other.mkdir()
    mask = str(sim.reffiles["mask"])
    root = root_of(src)
    # a foreign product with 3 usable steps, in a search directory
    fake_product(src, other / f"{root}_sat.fits", s_keys=("dq_init", "saturation"),
                 refs={"R_MASK": mask, "R_SATURA": str(sim.reffiles["saturation"]),
                       "R_SUPERB": str(sim.reffiles["superbias"]), "S_GRPSCL": "SKIPPED"})
    # more steps, but one that was not asked for: unusable
    fake_product(src, ssb / f"{root}_lin.fits", steps=("group_scale", "dq_init", "linearity"))
    # more steps, but made with another mask: unusable
    fake_product(src, ssb / f"{root}_ipc.fits", steps=NIR_REFPIX[:4],
                 refs={"R_MASK": "/somewhere/other_mask.fits"})
    cfg.data["output"]["pipeline_prod_search_dir"] = [str(other)]
    plan = plan_pipeline(s1)
    assert len(plan.runs) == 1
    run = plan.runs[0]
    assert run.input == other / f"{root}_sat.fits"
    assert run.done == ("dq_init", "saturation")
    assert run.to_run == ("ipc", "superbias", "refpix")
    params = run.step_parameters()
    assert params["dq_init"] == {"skip": True} and params["refpix"]["skip"] is False
    # an exact product is reused and nothing runs
    all_refs = {"R_MASK": mask, "R_SATURA": str(sim.reffiles["saturation"]),
                "R_SUPERB": str(sim.reffiles["superbias"]), "R_IPC": str(sim.reffiles["ipc"]),
                "R_REFPIX": "N/A"}
    fake_product(src, ssb / f"{root}_refpix.fits", steps=NIR_REFPIX,
                 refs={k: v for k, v in all_refs.items() if k != "R_IPC"})
    assert len(plan_pipeline(s1).runs) == 1      # R_IPC not recorded: not known to match
    fake_product(src, ssb / f"{root}_refpix.fits", steps=NIR_REFPIX, refs=all_refs)
    plan = plan_pipeline(s1)
    assert plan.runs == [] and plan.reused[0][1] == ssb / f"{root}_refpix.fits"


def test_module_specific_reference_files_make_a_separate_product(sim, tmp_path):
    extra = f"""
b:
  reftype: readnoise
  imtypes: D
  ssbsteps: dq_init-
  reffile4ssb:
    bpmreffile: {sim.reffiles['mask']}
"""
    cfg = config(tmp_path, sim, "a:dq_init-", extra.replace("b:\n", "b:\n", 1))
    cfg.data["reflabels"].append("b")
    cfg.data["reffile4ssb"] = {"default": str(sim.outdir / "reffiles" / "*.fits"),
                               "mask": str(sim.reffiles["gain"])}
    plan = plan_pipeline(organise_inputs(cfg, "a,b", [str(sim.files()[0])]))
    names = sorted(s.dest.name for r in plan.runs for s in r.saves)
    assert len(plan.runs) == 2
    assert names[0].endswith("_dq_init.fits") and "_dq_init_r" in names[1]


def test_missing_reference_files_name_the_step_and_reftype(sim, tmp_path):
    cfg = config(tmp_path, sim, "a:refpix-")
    cfg.data["reffile4ssb"] = {"mask": str(tmp_path / "nomask_*.fits"), "default": "CRDS"}
    with pytest.raises(PlanError) as err:
        plan_pipeline(organise_inputs(cfg, "a", [str(sim.files()[0])]))
    msg = str(err.value)
    assert "step dq_init" in msg and "mask" in msg and "matches no file" in msg
    cfg.data["reffile4ssb"] = {"default": "SELF"}
    with pytest.raises(PlanError, match="SELF for mask"):
        plan_pipeline(organise_inputs(cfg, "a", [str(sim.files()[0])]))


def test_patterns_choose_by_reftype_detector_and_subarray(sim, tmp_path):
    cfg = config(tmp_path, sim, "a:dark-")
    plan = plan_pipeline(organise_inputs(cfg, "a", [str(sim.files()[0])]))
    refs = plan.runs[0].refs
    assert refs["dark"].endswith("_dark_sub64p.fits")
    assert refs["mask"].endswith("_mask.fits") and refs["refpix"] == "N/A"


# ---- running the real pipeline ----------------------------------------------

def test_real_pipeline_offline_deduplicated_and_resumed(sim, tmp_path, capsys):
    cfgfile = tmp_path / "run.cfg"
    cfgfile.write_text(textwrap.dedent(f"""
        reflabels: [rn, dk, bp]
        reftypes: [readnoise, dark, bpm]
        output:
          outrootdir: {tmp_path / 'out'}
          runID: 1
          ssblogFlag: True
          ssberrorlogFlag: True
        reffile4ssb:
          default: {sim.outdir / 'reffiles'}/*.fits
        rn: {{reftype: readnoise, imtypes: D, ssbsteps: refpix-}}
        dk: {{reftype: dark, imtypes: D, ssbsteps: jump-}}
        bp: {{reftype: bpm, imtypes: D, ssbsteps: rate-}}
        plugin_dirs: [{tmp_path}]
        """))
    # modules that are not under test here: they fail, and say so (exit status 1)
    (tmp_path / "mkref_idle.py").write_text(textwrap.dedent("""
        from jwst_reffiles.plugins import Plugin
        class Rn(Plugin):
            reflabel, reftype = "rn", "readnoise"
            def callalgorithm(self):
                raise RuntimeError("not under test")
        class Dk(Rn):
            reflabel, reftype = "dk", "dark"
        class Bp(Rn):
            reflabel, reftype = "bp", "bpm"
        """))
    args = ["--cfgfile", str(cfgfile), "rn,dk,bp", str(sim.outdir)]
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    assert "2 run(s) done, 0 failed" in out and "6 runs without deduplication" in out
    ssb = tmp_path / "out" / "001" / "ssb"
    for src in sim.files():
        root = root_of(src)
        for level, steps in (("refpix", NIR_REFPIX),
                             ("jump", NIR_REFPIX + ("linearity", "dark_current", "jump")),
                             ("rate", NIR_REFPIX + ("linearity", "dark_current", "jump",
                                                    "ramp_fit"))):
            h = fits.getheader(ssb / f"{root}_{level}.fits")
            for step, (_, key, _) in STEP_INFO.items():
                if step in steps:
                    assert h[key] == "COMPLETE", (level, step)
                elif step not in steps:
                    assert h.get(key, "SKIPPED") != "COMPLETE", (level, step)
            assert h[JRSTEPS] == ",".join(steps)
        assert (ssb / f"{root}_fitopt.fits").exists() and (ssb / f"{root}_rateints.fits").exists()
        # ssblogFlag: the pipeline's log; ssberrorlogFlag: its warnings and errors only
        log_text = (ssb / f"{root}_rate.log.txt").read_text()
        assert "Step jump running" in log_text and "Step ramp_fit done" in log_text
        assert "Step jump running" not in (ssb / f"{root}_rate.err.txt").read_text()
    assert not [p for p in ssb.iterdir() if p.name.startswith(".run-")]
    products = Table.read(tmp_path / "out" / "001" / "ssb_products.ecsv")
    assert len(products) == 6 and all(p.endswith("_fitopt.fits") for p in
                                       products[products["reflabel"] == "bp"]["fitopt"])
    # a second invocation reuses everything and runs nothing
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    assert "0 runs, 6 products reused" in out and "0 run(s) done" in out


def test_a_failing_run_leaves_no_product_and_sets_the_exit_status(sim, tmp_path, capsys):
    cfg = config(tmp_path, sim, "a:refpix-")
    cfg.data["reffile4ssb"] = {"default": str(sim.outdir / "reffiles" / "*.fits"),
                               "mask": str(sim.reffiles["gain"])}      # wrong kind of file
    s1 = organise_inputs(cfg, "a", [str(sim.files()[0])])
    plan, outcomes = calibrate_inputs(s1, jobs=1)
    assert len(outcomes) == 1 and not outcomes[0].ok
    assert outcomes[0].error.startswith("in step dq_init: ")
    ssb = s1.layout.ssbdir
    # no product, no work directory: only the run's log with its traceback
    assert [p.name for p in ssb.iterdir()] == [Path(outcomes[0].errorfile).name]
    assert Path(outcomes[0].errorfile).name.endswith(".error.txt")
    assert "Traceback (most recent" in Path(outcomes[0].errorfile).read_text()
    runs = Table.read(s1.layout.rundir / "pipeline_runs.ecsv")
    assert list(runs["status"]) == ["failed"]


def test_miri_through_linearity_offline(tmp_path):
    sim = simulate_dataset(tmp_path / "miri", detector="MIRIMAGE", subarray="FULL",
                           readpatt="FAST", ngroups=4, nints=1, ndarks=1, nflats=0, seed=3)
    cfg = config(tmp_path, sim, "m:linearity-")
    cfg.data["instrument"] = "MIRI"
    s1 = organise_inputs(cfg, "m", [str(sim.files()[0])])
    plan, outcomes = calibrate_inputs(s1, jobs=1)
    assert [o.ok for o in outcomes] == [True], [o.error for o in outcomes]
    h = fits.getheader(plan.runs[0].saves[0].dest)
    steps = h[JRSTEPS].split(",")
    assert steps == ["dq_init", "saturation", "ipc", "firstframe", "lastframe", "linearity"]
    assert h["S_LINEAR"] == "COMPLETE" and h.get("S_SUPERB") != "COMPLETE"
    # rscd needs a reference file the simulator does not make: a clear error
    cfg = config(tmp_path, sim, "m:dark-")
    cfg.data["instrument"] = "MIRI"
    with pytest.raises(PlanError, match="step rscd.*rscd"):
        plan_pipeline(organise_inputs(cfg, "m", [str(sim.files()[0])]))


# ---- inputs that are already partly calibrated -------------------------------

@pytest.fixture(scope="module")
def user_products(sim, tmp_path_factory):
    """What a user brings: each dark through dq_init+saturation, through jump and
    through ramp fitting (rate, rateints, fitopt), made by the real pipeline, named
    as jwst names them and without jwst_reffiles' JRSTEPS stamp (S_* keywords only)."""
    tmp = tmp_path_factory.mktemp("partial")
    cfgfile = tmp / "make.cfg"
    cfgfile.write_text(textwrap.dedent(f"""
        reflabels: [mk]
        reftypes: [bpm]
        output: {{outrootdir: {tmp / 'out'}, runID: 1}}
        reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits'}}
        mk: {{reftype: bpm, imtypes: D, ssbsteps: 'rate-', ssbsave: [saturation, jump]}}
        """))
    s1 = organise_inputs(load_config(cfgfile), "mk", [str(p) for p in sim.files()])
    plan, outcomes = calibrate_inputs(s1, jobs=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    user = tmp / "user"
    user.mkdir()
    for src in sim.files():
        root = root_of(src)
        for kind in ("saturation", "jump", "rate", "rateints", "fitopt"):
            dest = user / f"{root}_{kind}.fits"
            shutil.copy(s1.layout.ssbdir / f"{root}_{kind}.fits", dest)
            with fits.open(dest, mode="update") as hdul:
                del hdul[0].header[JRSTEPS]
    return user


def partial_config(tmp_path, sim, modules: dict, mask=None):
    """Modules (label -> ssbsteps) reading inputs named <root>_<step>.fits."""
    refs = {"default": f"{sim.outdir / 'reffiles'}/*.fits"}
    if mask:
        refs["mask"] = mask
    text = textwrap.dedent(f"""
        reflabels: [{', '.join(modules)}]
        reftypes: [readnoise, bpm]
        inputfiles: {{basenamepattern: '(.*)_(uncal|saturation|jump|rate)\\.fits$'}}
        output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}
        """) + f"reffile4ssb: {refs}\n"
    for label, steps in modules.items():
        text += f"{label}: {{reftype: bpm, imtypes: D, ssbsteps: '{steps}'}}\n"
    path = tmp_path / "main.cfg"
    path.write_text(text)
    return load_config(path)


def given(user, kind):
    return sorted(str(p) for p in user.glob(f"*_{kind}.fits"))


def test_an_input_with_exactly_the_steps_asked_for_is_used_as_it_is(sim, user_products,
                                                                      tmp_path):
    cfg = partial_config(tmp_path, sim, {"a": "dq_init, saturation", "r": "rate-"})
    s1 = organise_inputs(cfg, "a", given(user_products, "saturation"))
    plan = plan_pipeline(s1)
    assert plan.runs == []
    assert {str(p["product"]) for p in plan.products.values()} == \
        set(given(user_products, "saturation"))
    assert any("already calibrated through dq_init, saturation: used as it is" in n
               for n in plan.notes)
    # a rate file given directly, with its rateints and fitopt beside it
    plan = plan_pipeline(organise_inputs(cfg, "r", given(user_products, "rate")))
    assert plan.runs == []
    for p in plan.products.values():
        assert str(p["product"]).endswith("_rate.fits")
        assert p["fitopt"].name.endswith("_fitopt.fits") and p["rateints"].is_file()


def test_an_input_with_fewer_steps_is_run_from_where_it_stands(sim, user_products, tmp_path,
                                                                capsys):
    cfg = partial_config(tmp_path, sim, {"a": "refpix-", "r": "rate-"})
    plan = plan_pipeline(organise_inputs(cfg, "a", given(user_products, "saturation")))
    assert [r.to_run for r in plan.runs] == [("ipc", "superbias", "refpix")] * 2
    assert all(r.input.name.endswith("_saturation.fits") for r in plan.runs)
    plan = plan_pipeline(organise_inputs(cfg, "r", given(user_products, "jump")))
    assert [r.to_run for r in plan.runs] == [("ramp_fit",)] * 2
    # and the real pipeline takes them on from there
    s1 = organise_inputs(cfg, "a", given(user_products, "saturation")[:1])
    plan, outcomes = calibrate_inputs(s1, jobs=1)
    assert [o.ok for o in outcomes] == [True], [o.error for o in outcomes]
    h = fits.getheader(plan.runs[0].saves[0].dest)
    assert h[JRSTEPS] == ",".join(NIR_REFPIX)
    assert h["S_SATURA"] == "COMPLETE" and h["S_REFPIX"] == "COMPLETE"


def test_an_input_with_a_step_not_asked_for_is_run_from_its_raw_file_or_left_out(
        sim, user_products, tmp_path, capsys):
    cfg = partial_config(tmp_path, sim, {"a": "dq_init"})
    inputs = given(user_products, "saturation")
    # no raw exposure beside them: left out, with the reason, never a crash
    s1 = organise_inputs(cfg, "a", inputs)
    plan = plan_pipeline(s1)
    assert plan.runs == [] and len(plan.skipped) == 2
    reason = next(iter(plan.skipped.values()))
    assert "has had saturation, which the module's ssbsteps (dq_init) do not ask for" in reason
    assert "no raw exposure" in reason and "_uncal.fits" in reason
    # with the raw exposure beside one of them: that one runs from it
    raw = sim.files()[0]
    beside = Path(inputs[0]).with_name(raw.name)
    shutil.copy(raw, beside)
    try:
        plan = plan_pipeline(organise_inputs(cfg, "a", inputs))
        assert [r.input for r in plan.runs] == [beside] and len(plan.skipped) == 1
        assert any(f"runs from the raw exposure beside it, {raw.name}" in n for n in plan.notes)
    finally:
        beside.unlink()
    # through mkrefs: exit status 1 with the reason in the summary and the tables
    cfgfile = tmp_path / "main.cfg"
    with open(cfgfile, "a") as fh:
        fh.write(f"plugin_dirs: [{tmp_path}]\n")
    (tmp_path / "mkref_a.py").write_text(textwrap.dedent("""
        from jwst_reffiles.plugins import Plugin
        class A(Plugin):
            reflabel, reftype = "a", "bpm"
            def callalgorithm(self):
                raise RuntimeError("not under test")
        """))
    assert cli.main(["--cfgfile", str(cfgfile), "a"] + inputs) == 1
    captured = capsys.readouterr()
    assert "do not ask for" in captured.out and "SKIPPED" in captured.out
    table = Table.read(tmp_path / "out" / "001" / "reffiles.ecsv")
    assert list(table["status"]) == ["skipped", "skipped"]
    assert all("no raw exposure" in e for e in table["error"])


def test_an_input_made_with_other_reference_files_is_named(sim, user_products, tmp_path):
    other = tmp_path / "other_mask.fits"
    shutil.copy(sim.reffiles["mask"], other)
    cfg = partial_config(tmp_path, sim, {"a": "refpix-"}, mask=str(other))
    plan = plan_pipeline(organise_inputs(cfg, "a", given(user_products, "saturation")))
    assert plan.runs == [] and len(plan.skipped) == 2
    reason = next(iter(plan.skipped.values()))
    assert "made with other reference files: mask" in reason and "other_mask.fits" in reason


def test_the_refpix_only_mask_is_the_size_of_the_exposures_subarray(sim, tmp_path):
    cfg = config(tmp_path, sim, "a:dq_init")
    cfg.data["reffile4ssb"] = {"default": str(sim.outdir / "reffiles" / "*.fits"),
                               "mask": "REFPIX"}
    plan = plan_pipeline(organise_inputs(cfg, "a", [str(sim.files()[0])]))
    mask = Path(plan.runs[0].refs["mask"])
    assert mask.name == "jwst_reffiles_refpix_only_nircam_nrca1_sub64p_1-1-64x64_mask.fits"
    with fits.open(mask) as hdul:
        assert hdul["DQ"].data.shape == (64, 64)
        assert hdul[0].header["SUBARRAY"] == "SUB64P" and hdul[0].header["SUBSIZE1"] == 64
        assert (hdul["DQ"].data[:4] > 0).all() and (hdul["DQ"].data[10:, 10:] == 0).all()
    assert mask.stat().st_size < 100_000                  # not a 16 MB full frame
