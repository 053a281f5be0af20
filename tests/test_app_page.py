"""``python -m genrecraft.app`` in a real headless Chromium (Debian's chromium + chromedriver, selenium).

Three columns on the tiny model: the base, the base with a LoRA adapter at strength 1, and a model spec that
cannot load. One click generates; both good columns must serve a WAV that the browser plays, of the chosen length
and the model's sample rate, and differ (the adapter is applied); the broken column shows its error, and the app
still answers a second generation."""

import copy
import functools
import json
import os
import shutil
import struct
import time
import urllib.request

import pytest
import torch
from selenium.webdriver.common.by import By

import lora
from genrecraft import app as app_mod
from genrecraft.models import tiny_musicgen
from tests.test_listening_page import CHROME_FLAGS

SECONDS = 2.0


@functools.lru_cache(maxsize=None)
def _tiny():
    return tiny_musicgen(seed=0)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model is much faster on one thread of a busy machine
    root = tmp_path_factory.mktemp("app")
    model = copy.deepcopy(_tiny())
    lm = copy.deepcopy(model.lm)
    lora.inject(lm, lora.LoraConfig(r=4, alpha=8, targets=lora.ATTENTION_TARGETS + ("linears",)))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in lora.lora_parameters(lm):
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    adapter = lora.save_adapter(lm, root / "adapter", base_model_id="tiny:0")
    pool = app_mod.ModelPool(device="cpu")
    pool.put("tiny:0", model)
    catalog = app_mod.Catalog(models={"base": "tiny:0", "broken": "tiny:0@/nonexistent/adapter"},
                              adapters={"style": str(adapter)})
    app = app_mod.build_app(catalog, pool, columns=3, out_dir=root / "out", max_duration=SECONDS,
                            initial=[("base", None, 1.0), ("base", "style", 1.0), ("broken", None, 1.0)])
    url = app_mod.launch(app, "127.0.0.1", 0)
    yield url
    app.close()
    torch.set_num_threads(before)


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _wait_for_statuses(driver, seed, timeout=240):
    """The three columns' status lines once the generation with ``seed`` has finished in every column."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        statuses = [driver.find_element(By.ID, f"status{i}").text.strip() for i in range(3)]
        busy = any("%" in s or "loading" in s for s in statuses)
        if not busy and all(f"seed {seed}," in s for s in statuses[:2]) and statuses[2].startswith("Error"):
            return statuses
        time.sleep(0.5)
    raise AssertionError(f"the page did not finish generating: {statuses}")


PLAY = """
const [href, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const bytes = await (await fetch(href)).arrayBuffer();
  const view = new DataView(bytes);
  const header = String.fromCharCode(...new Uint8Array(bytes.slice(0, 4)));
  const audio = new Audio(href);
  await audio.play();
  await new Promise(r => setTimeout(r, 400));
  done({header, sampleRate: view.getUint32(24, true), channels: view.getUint16(22, true),
        duration: audio.duration, currentTime: audio.currentTime, paused: audio.paused});
})().catch(e => done({error: String(e)}));
"""


def _clip_href(driver, column):
    links = driver.find_elements(By.CSS_SELECTOR, f"#audio{column} a[download]")
    return links[0].get_attribute("href") if links else None


@pytest.mark.slow
def test_two_models_side_by_side_play_in_the_browser(page, browser):
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page)
    WebDriverWait(browser, 60).until(expected_conditions.element_to_be_clickable((By.ID, "generate"))).click()
    statuses = _wait_for_statuses(browser, seed=0)
    assert "32000 Hz" in statuses[0] and "32000 Hz" in statuses[1], statuses
    assert statuses[2].startswith("Error") and "is not a LoRA adapter folder" in statuses[2], statuses

    hrefs = [_clip_href(browser, i) for i in range(3)]
    assert hrefs[0] and hrefs[1] and hrefs[2] is None
    for href in hrefs[:2]:
        played = browser.execute_async_script(PLAY, href)
        assert "error" not in played, played
        assert played["header"] == "RIFF" and played["sampleRate"] == 32000 and played["channels"] == 1
        assert abs(played["duration"] - SECONDS) < 0.05, played
        assert played["currentTime"] > 0 and not played["paused"], played  # it really plays
    with urllib.request.urlopen(hrefs[0]) as a, urllib.request.urlopen(hrefs[1]) as b:
        base, adapted = a.read(), b.read()
    assert struct.unpack("<I", base[24:28])[0] == 32000
    assert base[44:] != adapted[44:]  # same prompt and seed; the adapter changed the music
    # a spectrogram per clip
    assert browser.find_elements(By.CSS_SELECTOR, "#spec0 img") and browser.find_elements(By.CSS_SELECTOR,
                                                                                         "#spec1 img")

    # the app keeps working after a column failed: generate again with another seed
    seed = browser.find_element(By.CSS_SELECTOR, "#seed input")
    seed.clear()
    seed.send_keys("7")
    browser.find_element(By.ID, "generate").click()
    _wait_for_statuses(browser, seed=7)
    assert _clip_href(browser, 0) != hrefs[0]


def test_sidecar_records_the_adapter_and_strength(tmp_path):
    from eval.generate import GenerateConfig

    pool = app_mod.ModelPool()
    pool.put("tiny:0", copy.deepcopy(_tiny()))
    config = GenerateConfig(n=1, duration=0.5, prompt_duration=0.0, batch_size=1, progress=False)
    result = app_mod.generate_column(pool, "tiny:0", None, 1.0, "x", config, tmp_path, "c0")
    assert result.audio and result.image and result.image.stat().st_size > 1000
    meta = json.loads(result.audio.with_suffix(".json").read_text())
    assert meta["model"] == "tiny:0" and meta["adapter"] is None and meta["seed"] == 0
    bad = app_mod.generate_column(pool, "tiny:x", None, 1.0, "x", config, tmp_path, "c1")
    assert bad.audio is None and bad.status.startswith("**Error** (ValueError)") and "tiny:x" in bad.status
