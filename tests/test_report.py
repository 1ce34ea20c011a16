"""The report (workflow/rules/report.smk, `make report`): built on the tiny pipeline and opened in
headless Chromium, as a reader would; and the report items' own pieces on small inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ferxai.report.experiment import methods_page, reliability_page
from ferxai.report.facts import rule_times
from ferxai.report.targets import RUN_FACTS, not_scored, report_targets
from tinyflow import TINY, make_workdir, snakemake

CATEGORIES = ["Data", "Training", "Evaluation", "Explanations", "Explanation quality", "Run facts"]
# a method that cannot run on this model: the run keeps going and the report must say why
BROKEN = {"broken_cam": {"method": "gradcam", "target_layer": "features.no_such_block"}}
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver (Debian's packages; .ci/run does it on CI)"


def report_config() -> dict:
    cfg = json.loads(json.dumps(TINY))
    cfg["explain"]["methods"] = {**cfg["explain"]["methods"], **BROKEN}
    cfg["explain"]["conditions"] = ["clean", "gaussian-0.1"]  # so the conditions figure is built
    cfg["assess"] = {"metrics": {"sparseness": {}}, "randomisation": {"images": 0}}
    return cfg


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The tiny pipeline, the report's items (through report/run_facts.html) and report.html."""
    workdir = make_workdir(tmp_path_factory.mktemp("report"), report_config())
    snakemake(workdir, RUN_FACTS)
    snakemake(workdir, "--report", "report.html", RUN_FACTS)
    return workdir


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip(f"no headless Chromium at {CHROMIUM} / {CHROMEDRIVER}: {INSTALL}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


SIDEBAR = "//h1[contains(., 'Snakemake')]/.."  # the report's menu: heading, breadcrumbs, lists


def sidebar(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, SIDEBAR)


def menu_links(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [a.text for a in sidebar(driver).find_elements(By.TAG_NAME, "a") if a.text]


def breadcrumbs(driver) -> list[str]:
    """The menu's path as its breadcrumbs show it: ["Results", category, subcategory] once opened."""
    from selenium.webdriver.common.by import By

    return [li.text for li in sidebar(driver).find_elements(By.CSS_SELECTOR, "nav ol li") if li.text]


def open_menu(driver, url: str, category: str, subcategory: str | None = None, attempts: int = 3) -> None:
    """From the report's start page, click `category` (and `subcategory`) in the menu. Each click is
    checked against the breadcrumbs: one that lands on a neighbour ("Explanation quality" sits under
    "Explanations") reloads the page and tries again, so a test never reads the wrong category."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    path = [category] + ([subcategory] if subcategory is not None else [])
    for _ in range(attempts):
        driver.get(url)
        try:
            for depth, text in enumerate(path, start=1):
                click_link(driver, text)
                WebDriverWait(driver, 5, poll_frequency=0.2,
                              ignored_exceptions=(StaleElementReferenceException,)).until(
                    lambda d: breadcrumbs(d) == ["Results", *path[:depth]])
            return
        except TimeoutException:
            continue
    raise AssertionError(f"menu {' / '.join(path)} not reached in {attempts} tries; "
                         f"the breadcrumbs read {breadcrumbs(driver)}")


def click_link(driver, text: str) -> None:
    """Click the menu link `text` once it has stopped moving."""
    from selenium.webdriver.common.by import By

    click_when_settled(driver, lambda d: sidebar(d).find_element(By.LINK_TEXT, text), f"menu link {text!r}")


def view_result(driver, name: str) -> None:
    """Click the eye button of the listed result `name`, once the list has stopped moving."""
    click_when_settled(driver, lambda d: listed_files(d)[name], f"view button of {name}")


def click_when_settled(driver, find, what: str) -> None:
    """Click the element `find(driver)` returns once it is where it was on the poll before: the menu
    widens and its entries slide in (CSS transitions), and a click during one lands on whatever is
    passing under the pointer (a neighbouring category, another file's button)."""
    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    last_rect: list[dict] = []

    def clicked(d) -> bool:
        try:
            element = find(d)
            rect = element.rect
            if last_rect != [rect]:  # moved since the last poll, or the first poll: not settled yet
                last_rect[:] = [rect]
                return False
            element.click()
            return True
        except (ElementClickInterceptedException, StaleElementReferenceException):
            return False

    WebDriverWait(driver, 10, poll_frequency=0.2).until(clicked, f"{what} never clickable")


def listed_files(driver) -> dict[str, object]:
    """File name -> its view button, for every result the menu lists now."""
    from selenium.webdriver.common.by import By

    rows = sidebar(driver).find_elements(By.CSS_SELECTOR, "tbody tr")
    return {row.find_element(By.TAG_NAME, "td").text: row.find_element(By.CSS_SELECTOR, "a[iconname=eye]")
            for row in rows}


def shown_result(driver, path: Path):
    """The content pane's element holding exactly the bytes of `path` (its <img>, or the <iframe> of
    an HTML result; Snakemake embeds each as a data URI), once it does: proof that the click opened
    this result, not a neighbour or the one shown before."""
    import base64

    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected = path.read_bytes()
    tag = "img" if path.suffix == ".png" else "iframe"

    def holding(d):
        for element in d.find_elements(By.TAG_NAME, tag):
            src = element.get_attribute("src") or ""
            if src.startswith("data:") and ";base64," in src and base64.b64decode(src.split(",", 1)[1]) == expected:
                return element
        return False

    return WebDriverWait(driver, 10, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)).until(
        holding, f"{path.name} is never shown")


def shown_image_size(driver, path: Path) -> tuple[int, int]:
    """Natural size of the PNG `path` as the content pane shows it, once decoded (a timeout if never)."""
    from selenium.webdriver.support.ui import WebDriverWait

    image = shown_result(driver, path)
    script = "const i = arguments[0]; return i.complete ? [i.naturalWidth, i.naturalHeight] : [0, 0];"
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(script, image)[0] > 0)
    return tuple(driver.execute_script(script, image))


def shown_page_text(driver, path: Path) -> str:
    """Text of the HTML result `path` as the content pane shows it (Snakemake puts it in an iframe)."""
    from selenium.webdriver.common.by import By

    driver.switch_to.frame(shown_result(driver, path))
    try:
        return driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.switch_to.default_content()


@pytest.mark.slow
def test_every_category_is_there_and_its_results_render(built, browser, tmp_path):
    url = (built / "report.html").as_uri()
    browser.get(url)
    assert [c for c in CATEGORIES if c not in menu_links(browser)] == []
    seen: dict[str, list[str]] = {}
    for category in CATEGORIES:
        open_menu(browser, url, category)
        # a category with one subcategory lists its files at once; otherwise its subcategories
        places = [None] if listed_files(browser) else [
            s for s in menu_links(browser) if s not in ("Results", category)]
        assert places, f"{category}: neither files nor subcategories listed"
        for sub in places:
            open_menu(browser, url, category, sub)
            names = list(listed_files(browser))
            assert names, f"{category} / {sub}: no results listed"
            seen.setdefault(category, []).extend(names)
            for name in names:
                if not name.endswith((".png", ".html")):
                    continue
                view_result(browser, name)
                if name.endswith(".png"):
                    width, height = shown_image_size(browser, built / name)
                    assert width > 0 and height > 0, f"{category} / {sub}: {name} does not render"
                else:
                    assert shown_page_text(browser, built / name).strip(), f"{category} / {sub}: {name} shows no text"
    assert any(n.endswith("samples.png") for n in seen["Data"])
    assert any(n.endswith("findings.html") for n in seen["Data"])
    assert any(n.endswith("training_settings.html") for n in seen["Training"])
    assert any(n.endswith("per_class.png") for n in seen["Evaluation"])
    assert any("/grids/" in n for n in seen["Explanations"])  # the per-image method grids
    assert any(n.endswith("conditions.png") for n in seen["Explanations"])  # noise conditions side by side
    assert any(n.endswith("methods.html") for n in seen["Explanation quality"])
    assert any(n.endswith("leaderboard.png") for n in seen["Explanation quality"])
    assert seen["Run facts"] == [RUN_FACTS]
    # what a reader sees: the findings page says what was checked, the methods page what failed
    open_menu(browser, url, "Data")
    view_result(browser, "report/data/tiny/findings.html")
    assert "no input rejected" in shown_page_text(browser, built / "report/data/tiny/findings.html")
    open_menu(browser, url, "Explanation quality")
    view_result(browser, "report/experiments/tiny_cnn/methods.html")
    assert "no_such_block" in shown_page_text(browser, built / "report/experiments/tiny_cnn/methods.html")
    open_menu(browser, url, "Data")
    view_result(browser, "report/data/tiny/samples.png")
    shown_image_size(browser, built / "report/data/tiny/samples.png")
    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_items_say_what_failed_and_what_the_run_was(built):
    methods = (built / "report/experiments/tiny_cnn/methods.html").read_text()
    assert "1 of 3 methods failed" in methods and "no_such_block" in methods
    assert "results/tiny_cnn/model/best.pt" in methods  # the model each method's maps came from
    facts = (built / RUN_FACTS).read_text()
    assert "training ran on" in facts and "cpu (mixed precision off)" in facts
    # wall time per rule from the benchmark files: the training job's own line
    assert "<td>train</td>" in facts and "<td>report_dataset</td>" in facts
    assert "not a git checkout" in facts  # the tiny copy is no git checkout
    reliability = (built / "report/experiments/tiny_cnn/metric_reliability.html").read_text()
    assert "<td>sparseness</td>" in reliability
    findings = (built / "report/data/tiny/findings.html").read_text()
    assert "no input rejected" in findings and "no duplicate across splits" in findings
    assert set(report_targets(report_config())) <= {str(p.relative_to(built)) for p in built.glob("report/**/*")
                                                    if p.is_file()}


def test_an_experiment_without_scores_is_reported_as_such(tmp_path):
    cfg = json.loads(json.dumps(TINY))
    assert "no assess section" in not_scored(cfg, "tiny_cnn")
    cfg["assess"] = {"metrics": {"sparseness": {}}}
    assert not_scored(cfg, "tiny_cnn") is None
    status = [{"method": "saliency", "registry": "saliency", "family": "gradient", "seconds_per_image": 0.01,
               "preflight_failed": "", "failures": {}, "scores": None}]
    page = tmp_path / "methods.html"
    methods_page(page, "tiny_cnn", status, ["clean"], not_scored(TINY, "tiny_cnn"))
    text = page.read_text()
    assert "explanations not scored" in text and "not scored" in text and "all 1 methods" in text


def test_wall_time_per_rule_reads_each_benchmark_file_as_its_rule(tmp_path, monkeypatch):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {"benchmarks/e/explain/clean/saliency/shard-0.tsv": 2.0,
             "benchmarks/e/explain/clean/saliency/shard-1.tsv": 3.0,
             "benchmarks/e/explain/preflight/saliency.tsv": 5.0,
             "benchmarks/e/train.tsv": 7.5, "benchmarks/stray.tsv": 1.0}
    for name, seconds in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(header + f"{seconds}\t0:00:0{int(seconds)}\t100\t1\t1\t1\t0\t0\t0\t0\n")
    patterns = {"attribute": "benchmarks/{experiment}/explain/{condition}/{method}/shard-{shard}.tsv",
                "preflight": "benchmarks/{experiment}/explain/preflight/{method}.tsv",
                "train": "benchmarks/{experiment}/train.tsv"}
    monkeypatch.chdir(tmp_path)
    times, unmatched = rule_times("benchmarks", patterns)
    assert [(t.rule, t.jobs, t.total_s, t.max_s) for t in times] == [
        ("train", 1, 7.5, 7.5), ("attribute", 2, 5.0, 3.0), ("preflight", 1, 5.0, 5.0)]
    assert unmatched == ["benchmarks/stray.tsv"]
    (tmp_path / "benchmarks/e/train.tsv").write_text(header)
    with pytest.raises(ValueError, match="train.tsv: benchmark file without a data row"):
        rule_times("benchmarks", patterns)


def test_the_reliability_page_names_metrics_that_do_not_put_random_last(tmp_path):
    header = "metric,condition,family,direction,methods,random_last,random_beaten_by,random_rank,edge_rank," \
             "edge_beaten_by,stability_tau\n"
    (tmp_path / "reliability.csv").write_text(
        header + "deletion,clean,faithfulness,lower,5,True,1.0,5,2,0.25,0.91\n"
                 "sparseness,clean,complexity,higher,5,False,0.5,3,1,0.0,\n")
    page = tmp_path / "reliability.html"
    reliability_page(page, "tiny_cnn", str(tmp_path / "reliability.csv"), None)
    text = page.read_text()
    assert "1 of 2 metrics do not put random last" in text and "sparseness" in text
    assert "<td>0.91</td>" in text and "<td>100%</td>" in text
    reliability_page(page, "tiny_cnn", None, "no assess section.")
    assert "explanations not scored" in page.read_text() and "no assess section." in page.read_text()
