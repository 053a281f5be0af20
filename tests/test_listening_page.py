"""The rating page in a real headless Chromium (Debian's chromium + chromedriver, driven by selenium).

A rater answers pairs, reloads the page mid-pair, resumes where they stopped and finishes; a second rater answers
through the JSON API; the stored answers and the analysis figures are checked against what was clicked."""

import json
import os
import shutil
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from genrecraft.models import tiny_musicgen
from scripts import analyze as analyze_cli
from scripts import rate as rate_cli
from scripts.listening import analysis, pairs, server, stats
from scripts.listening.store import RatingStore

PROMPTS = ["bright synth-pop, C major", "mellow lofi beat", "fast drum and bass", "calm ambient pads"]
QUESTIONS = ("quality", "style", "prompt")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1100,1250"]


@pytest.fixture(scope="module")
def test_dir(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model is much faster on one thread of a busy machine
    try:
        out = tmp_path_factory.mktemp("page") / "test"
        models = {"base": tiny_musicgen(seed=0), "full": tiny_musicgen(seed=1)}
        pairs.make_pairs(models, PROMPTS, out, pairs.PairsConfig(
            generation=pairs.GenerationSettings(duration=1.0, top_k=50), style="synth-pop", blind_seed=1))
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture()
def running(test_dir, tmp_path):
    srv = server.make_server(test_dir, db_path=tmp_path / "ratings.sqlite", port=0)
    server.serve_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager look for a browser online
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# -- the plan: what each rater answers, from the key -----------------------------------------------------------

def plan_for(key, pair_id, rater):
    """Alice prefers 'full' except on pair p1 ('none'); Bob prefers whichever model is on side A.
    Scores: quality 4 for full and 2 for base; style 3 for A and 4 for B; prompt 5 for A and 1 for B."""
    k = next(p for p in key["pairs"] if p["id"] == pair_id)
    model = {"A": k["a"], "B": k["b"]}
    if rater == "alice":
        pref = "none" if pair_id == "p1" else ("A" if k["a"] == "full" else "B")
    else:
        pref = "A"
    scores = {side: {"quality": 4 if model[side] == "full" else 2, "style": 3 if side == "A" else 4,
                     "prompt": 5 if side == "A" else 1} for side in "AB"}
    return pref, scores


# -- page helpers -------------------------------------------------------------------------------------------------

def wait(driver, condition, timeout=20.0, what="condition"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d), message=what)


def current_pair(driver):
    src = driver.find_element("id", "audio-A").get_attribute("src")
    return src.rstrip("/").split("/")[-2]


def listen(driver, side):
    driver.execute_script(f"document.getElementById('audio-{side}').play()")
    wait(driver, lambda d: "ok" in d.find_element("id", f"listen-{side}").get_attribute("class"),
         what=f"clip {side} played to the end")


def click_score(driver, side, question, value):
    driver.find_element("css selector", f"input[name='{side}-{question}'][value='{value}'] + span").click()


def click_preference(driver, choice):
    driver.find_element("css selector", f"input[name='preference'][value='{choice}'] + span").click()


def saved(driver):
    wait(driver, lambda d: "All answers saved" in d.find_element("id", "save-status").text, what="answers saved")


def answer_pair(driver, key, rater, skip_b=False):
    pid = current_pair(driver)
    pref, scores = plan_for(key, pid, rater)
    listen(driver, "A")
    for q in QUESTIONS:
        click_score(driver, "A", q, scores["A"][q])
    if skip_b:
        return pid
    listen(driver, "B")
    for q in QUESTIONS:
        click_score(driver, "B", q, scores["B"][q])
    assert not driver.find_element("id", "next-button").is_enabled()  # the preference is still missing
    click_preference(driver, pref)
    saved(driver)
    assert driver.find_element("id", "next-button").is_enabled()
    return pid


@pytest.mark.slow
def test_rater_answers_reloads_resumes_and_finishes(test_dir, running, browser, tmp_path, capsys):
    url = server.url_of(running)
    key = pairs.load_key(test_dir / "key.json")
    browser.get(url)
    wait(browser, lambda d: d.find_element("id", "start-view").is_displayed(), what="start page")
    assert browser.find_element("id", "n-pairs").text == "4"
    browser.save_screenshot(str(tmp_path / "start.png"))

    browser.find_element("id", "rater-input").send_keys("alice")
    browser.find_element("css selector", "#start-form button").click()
    wait(browser, lambda d: d.find_element("id", "pair-view").is_displayed(), what="first pair")
    assert "synth-pop" in browser.find_element("id", "questions-A").text  # the style is named in its question
    done = [answer_pair(browser, key, "alice")]
    browser.find_element("id", "next-button").click()
    wait(browser, lambda d: current_pair(d) != done[0], what="second pair")
    done.append(answer_pair(browser, key, "alice"))
    browser.find_element("id", "next-button").click()
    wait(browser, lambda d: current_pair(d) not in done, what="third pair")

    # Half of the third pair, then the tab is reloaded: nothing is lost, the page resumes on that pair.
    third = answer_pair(browser, key, "alice", skip_b=True)
    saved(browser)
    browser.save_screenshot(str(tmp_path / "pair.png"))
    browser.refresh()
    wait(browser, lambda d: d.find_element("id", "pair-view").is_displayed(), what="resumed pair view")
    assert current_pair(browser) == third
    assert "2 answered" in browser.find_element("id", "progress-text").text
    score_a = plan_for(key, third, "alice")[1]["A"]["quality"]
    assert browser.find_element("css selector", f"input[name='A-quality'][value='{score_a}']").is_selected()
    assert "ok" in browser.find_element("id", "listen-A").get_attribute("class")
    assert "ok" not in browser.find_element("id", "listen-B").get_attribute("class")
    assert "play B to the end" in browser.find_element("id", "missing").text

    listen(browser, "B")
    pref, scores = plan_for(key, third, "alice")
    for q in QUESTIONS:
        click_score(browser, "B", q, scores["B"][q])
    click_preference(browser, pref)
    saved(browser)
    browser.find_element("id", "next-button").click()
    wait(browser, lambda d: current_pair(d) not in done + [third], what="fourth pair")
    last = answer_pair(browser, key, "alice")
    assert "Finish" in browser.find_element("id", "next-button").text
    browser.find_element("id", "next-button").click()
    wait(browser, lambda d: d.find_element("id", "done-view").is_displayed(), what="thank-you page")
    assert browser.find_element("id", "done-count").text == "4"
    browser.save_screenshot(str(tmp_path / "done.png"))
    for shot in ("start.png", "pair.png", "done.png"):
        assert (tmp_path / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # What the database holds is what was clicked.
    store = running.app.store
    session = store.session("alice")
    assert session["finished"] and session["n_complete"] == 4
    assert sorted([*done, third, last]) == sorted(session["order"])
    for pid, answer in session["answers"].items():
        pref, scores = plan_for(key, pid, "alice")
        assert answer["preference"] == pref and answer["ratings"] == scores
        assert all(answer["listened"][s]["ended"] and answer["listened"][s]["played_s"] > 0.5 for s in "AB")

    # A second rater through the API, then the analysis.
    _post(url + "api/session", {"rater": "bob"})
    for pid in store.pair_ids:
        pref, scores = plan_for(key, pid, "bob")
        for side in "AB":
            _post(url + "api/answer", {"rater": "bob", "pair_id": pid, "kind": "listen", "side": side,
                                       "value": {"played_s": 1.0, "ended": True}})
            for q in QUESTIONS:
                _post(url + "api/answer", {"rater": "bob", "pair_id": pid, "kind": "rating", "side": side,
                                           "question": q, "value": scores[side][q]})
        last_reply = _post(url + "api/answer", {"rater": "bob", "pair_id": pid, "kind": "preference", "value": pref})
    assert last_reply == {"complete": True, "n_complete": 4, "finished": True}

    result = analysis.analyze(test_dir, db_path=store.path, out=tmp_path / "analysis")
    assert len(result.answers) == 8
    expected = {"base": [0, 0, 0], "full": [0, 0, 0]}  # wins, losses, ties
    for rater in ("alice", "bob"):
        for p in key["pairs"]:
            pref, _ = plan_for(key, p["id"], rater)
            if pref == "none":
                expected[p["a"]][2] += 1
                expected[p["b"]][2] += 1
            else:
                winner = p["a"] if pref == "A" else p["b"]
                loser = p["b"] if pref == "A" else p["a"]
                expected[winner][0] += 1
                expected[loser][1] += 1
    table = {(r["model"], r["opponent"]): r for r in result.win_rates}
    for model, (w, lo, t) in expected.items():
        row = table[model, "all"]
        assert (row["wins"], row["losses"], row["ties"]) == (w, lo, t)
        assert row["p_value"] == pytest.approx(stats.win_rate(w, lo).p_value)
    mos = {(r["model"], r["question"]): r for r in result.mos}
    assert mos["full", "quality"]["mean"] == 4 and mos["base", "quality"]["mean"] == 2
    assert mos["full", "quality"]["n"] == 8
    agree = {(r["measure"], r["target"]): r for r in result.agreement}
    # Per pair: alice's and bob's choices (A/B/none) -> Fleiss' kappa computed from the key by hand.
    counts = []
    for p in key["pairs"]:
        row = [0, 0, 0]
        for rater in ("alice", "bob"):
            row[analysis.CHOICE_CODES[plan_for(key, p["id"], rater)[0]]] += 1
        counts.append(row)
    assert agree["fleiss_kappa", "preference"]["value"] == pytest.approx(stats.fleiss_kappa(np.array(counts)))
    assert agree["krippendorff_alpha_ordinal", "prompt"]["value"] == pytest.approx(1.0)  # both gave A 5, B 1
    csv_lines = (tmp_path / "analysis" / "answers.csv").read_text().splitlines()
    assert len(csv_lines) == 9 and csv_lines[0].startswith("rater,pair_id,prompt_index,prompt,model_A,model_B")
    assert result.files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert analyze_cli.main([str(test_dir), "--db", str(store.path), "--out", str(tmp_path / "cli")]) == 0
    assert "| full | all | {} | {} | {} |".format(*expected["full"]) in capsys.readouterr().out
    assert (tmp_path / "cli" / "win_rates.csv").read_text() == (tmp_path / "analysis" / "win_rates.csv").read_text()


def test_server_refuses_bad_input_and_hides_the_key(test_dir, running, tmp_path, capsys):
    url = server.url_of(running)
    info = json.loads(urllib.request.urlopen(url + "api/test", timeout=10).read())
    assert sorted(info["pairs"]) == ["p1", "p2", "p3", "p4"] and "models" not in json.dumps(info)
    for path in ("key.json", "static/../key.json", "clips/", "audio/p1/C", "audio/p9/A"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + path, timeout=10)
        assert err.value.code == 404
    for body, message in (({"rater": "../x"}, "rater="), ({"rater": "carol", "pair_id": "p9", "kind": "preference",
                                                          "value": "A"}, "pair_id=")):
        endpoint = "api/session" if "pair_id" not in body else "api/answer"
        if endpoint == "api/answer":
            _post(url + "api/session", {"rater": "carol"})
        with pytest.raises(urllib.error.HTTPError) as err:
            _post(url + endpoint, body)
        assert err.value.code == 400 and message in json.loads(err.value.read())["error"]
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(url + "api/answer", {"rater": "carol", "pair_id": "p1", "kind": "rating", "side": "A",
                                   "question": "quality", "value": 6})
    assert err.value.code == 400
    assert RatingStore(running.app.store.path, info["test_id"], ["p1", "p2", "p3", "p4"],
                       list(QUESTIONS)).session("carol")["answers"]["p1"]["ratings"]["A"] == {}

    # Audio is served by pair and side, with byte ranges (what the <audio> element asks for to seek).
    request = urllib.request.Request(url + "audio/p1/A", headers={"Range": "bytes=0-11"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 206 and response.headers["Content-Type"] == "audio/wav"
        head = response.read()
    assert head[:4] == b"RIFF" and head[8:12] == b"WAVE" and struct.unpack("<I", head[4:8])[0] > 1000


    # The command lines fail cleanly on a folder that holds no listening test.
    assert rate_cli.main([str(tmp_path / "nothing")]) == 2
    assert "pairs file not found" in capsys.readouterr().err
    assert analyze_cli.main([str(test_dir), "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no ratings database" in capsys.readouterr().err


def test_store_completion_rule_and_resume_order(tmp_path):
    db = tmp_path / "r.sqlite"
    store = RatingStore(db, "t1", ["p1", "p2"], ["quality"], require_listen=False)
    store.start("dana")
    for side in "AB":
        store.record("dana", "p1", "rating", 3, side=side, question="quality")
    assert store.record("dana", "p1", "preference", "B")["complete"]  # no listening needed in this mode
    # The setting is kept in the database; the pair order of a rater never changes.
    again = RatingStore(db, "t1", ["p1", "p2"], ["quality"])
    assert not again.require_listen and again.session("dana")["order"] == store.session("dana")["order"]
    strict = RatingStore(db, "t1", ["p1", "p2"], ["quality"], require_listen=True)
    assert not strict.session("dana")["answers"]["p1"]["complete"]
    with pytest.raises(ValueError, match="another listening test"):
        RatingStore(db, "t2", ["p1"], ["quality"])
