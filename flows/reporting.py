"""The monthly coalition report: tables from demand/, rendered to HTML, CSV and XLSX.

Pure functions: `report_tables` turns demand rows into the report's tables,
`proficiency_table` counts postings by the highest proficiency they ask for (from
mentions/), `render_html` renders one self-contained page with the Jinja template
(autoescaped, inline SVG charts from `flows.charts`, no external resources), and
`write_report` writes the folder: index.html, one CSV per table and report.xlsx.

Text that comes from ads (country, region, labels) is escaped in HTML by Jinja's
autoescape and by `Markup.format` in the charts, and neutralised against formula
injection in CSV and XLSX (`safe_cell`).
"""

from __future__ import annotations

import csv
import functools
import gettext
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from flows import charts, storage
from flows.demand import CELL, LOW_COUNT
from taxonomy.model import FRAMEWORKS, PROFICIENCY_LEVELS, Taxonomy

TEMPLATES = Path(__file__).parent / "templates"
TOP_N = 15
CHANGES_N = 6
REGION_FRAMEWORK = "digcomp"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 cannot hold (control characters, surrogates, U+FFFE/U+FFFF): an XLSX
# cell is XML, so they are dropped.
_XLSX_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
LANGS = ("en", "ru", "uk", "ro")
OPTIONAL_TABLES = {"proficiency", "occupations"}
FRAMEWORK_COLORS = {"digcomp": "#2f6fd6", "ecf": "#0f8b8d"}
# Highest level first; "unspecified" = a digital skill whose concept gives no level.
LEVEL_ORDER = ("specialist", "advanced", "intermediate", "basic", "unspecified", "none")
LEVEL_COLORS = {"specialist": "#1f3f7a", "advanced": "#2f6fd6", "intermediate": "#6f9ee8",
                "basic": "#a9c4f0", "unspecified": "#8a94a6", "none": "#dfe4ec"}

# --------------------------------------------------------------------------- strings

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "ru": ["январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь",
           "ноябрь", "декабрь"],
    "uk": ["січень", "лютий", "березень", "квітень", "травень", "червень", "липень", "серпень", "вересень",
           "жовтень", "листопад", "грудень"],
    "ro": ["ianuarie", "februarie", "martie", "aprilie", "mai", "iunie", "iulie", "august", "septembrie",
           "octombrie", "noiembrie", "decembrie"],
}
_MONTH_FORMAT = {"en": "{m} {y}", "ru": "{m} {y} г.", "uk": "{m} {y} р.", "ro": "{m} {y}"}

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Demand for digital skills in job ads",
        "lede": "Based on {ads} job ads posted in {month}. Reposts of the same ad are counted once.",
        "kpi_ads": "Job ads (duplicates removed)",
        "kpi_share": "Ask for at least one digital skill",
        "kpi_specialist": "Ask for specialist-level skills",
        "kpi_dup": "Duplicate rate (reposts removed)",
        "kpi_quarantine": "Records quarantined in the run",
        "kpi_countries": "Countries",
        "vs_previous": "{pp} on the previous month",
        "in_brief": "In brief",
        "f_share": "{share} of job ads ask for at least one digital skill.",
        "f_share_change": "{share} of job ads ask for at least one digital skill ({pp} on the previous month).",
        "f_top": "Most asked-for competence: {label} ({share} of ads).",
        "f_rise": "Largest rise: {label} ({pp}).",
        "f_fall": "Largest fall: {label} ({pp}).",
        "f_levels": "{specialist} of ads ask for specialist-level skills; {basic} ask for basic skills at most.",
        "f_low": "{count} of {total} regions have fewer than {n} ads: read their shares with care.",
        "sec_top": "Top competences",
        "note_top": "Share of job ads that ask for each competence (an ad can ask for several).",
        "legend_digcomp": "DigComp 2.2 — digital competence for all",
        "legend_ecf": "e-CF 4.0 — ICT professional competences",
        "legend_low": "fewer than {n} ads",
        "all_competences": "All competences ({n})",
        "sec_change": "Change against the previous month ({month})",
        "note_change": "Largest changes in the share of ads asking for a competence, in percentage points (pp).",
        "no_previous": "There is no data for the previous month, so changes will appear from next month's report.",
        "no_change": "No competence changed its share.",
        "sec_areas": "Competence areas",
        "sec_regions": "DigComp areas by region",
        "note_regions": "Share of job ads in each region that ask for a competence of the area; darker cells mean a "
                        "higher share. Rows marked “< {n}” rest on fewer than {n} ads and are shown in grey.",
        "sec_levels": "Basic versus specialist demand",
        "note_levels": "Job ads by the highest proficiency level among the skills they ask for.",
        "sec_countries": "Demand by country",
        "sec_occupations": "Top occupations",
        "note_occupations": "Occupations are ISCO-08 groups.",
        "sec_method": "Method and caveats",
        "m_count": "A job ad counts in the month it was posted. Exact and near-duplicate reposts are counted once.",
        "m_share": "Share = ads that ask for a competence ÷ all ads in the same group (month, country or region). "
                   "An ad can ask for several competences, so shares do not add up to 100%.",
        "m_low": "Figures that rest on fewer than {n} ads are marked “< {n}” and shown in grey: do not over-read them.",
        "m_match": "Skills are found by matching the labels of a skill taxonomy, in English, Russian, Ukrainian, "
                   "Romanian and Georgian, mapped to DigComp 2.2 and e-CF 4.0. Skills that an ad implies but does "
                   "not name are not counted.",
        "m_files": "The same tables are in the CSV files and in report.xlsx beside this page; every number can be "
                   "traced to the ads and sentences in the Parquet datasets.",
        "mf_sources": "Sources",
        "mf_read": "Job ads for the month, duplicates included",
        "mf_duplicates": "Duplicates removed",
        "mf_dup_rate": "Duplicate rate",
        "mf_quarantined": "Records quarantined in the run (all months)",
        "mf_taxonomy": "Taxonomy version",
        "mf_model": "Extractor version",
        "mf_software": "Software",
        "mf_run": "Run",
        "col_competence": "Competence",
        "col_framework": "Framework",
        "col_ads": "Ads",
        "col_share": "Share",
        "col_change": "Change",
        "col_area": "Area",
        "col_region": "Region",
        "col_country": "Country",
        "col_with": "With a digital skill",
        "col_any": "Any digital skill",
        "col_top": "Most asked for",
        "col_level": "Highest level asked for",
        "col_occupation": "Occupation",
        "not_stated": "Not stated",
        "region_not_stated": "Region not stated",
        "low_title": "Fewer than {n} ads",
        "no_skills": "No digital skill was found in this month's ads.",
        "pp": "pp",
        "footer": "Produced by skillpulse {version} from public job ads.",
        "lvl_basic": "Basic",
        "lvl_intermediate": "Intermediate",
        "lvl_advanced": "Advanced",
        "lvl_specialist": "Specialist",
        "lvl_unspecified": "Level not stated",
        "lvl_none": "No digital skill",
    },
    "ru": {
        "title": "Спрос на цифровые навыки в вакансиях",
        "lede": "Объявлений о вакансиях за {month}: {ads}. Повторные публикации одного объявления учтены один раз.",
        "kpi_ads": "Вакансии (без дубликатов)",
        "kpi_share": "Требуют хотя бы один цифровой навык",
        "kpi_specialist": "Требуют навыки уровня специалиста",
        "kpi_dup": "Доля дубликатов (исключены)",
        "kpi_quarantine": "Записей в карантине за запуск",
        "kpi_countries": "Страны",
        "vs_previous": "{pp} к прошлому месяцу",
        "in_brief": "Коротко",
        "f_share": "{share} вакансий требуют хотя бы один цифровой навык.",
        "f_share_change": "{share} вакансий требуют хотя бы один цифровой навык ({pp} к прошлому месяцу).",
        "f_top": "Самая востребованная компетенция: {label} ({share} вакансий).",
        "f_rise": "Наибольший рост: {label} ({pp}).",
        "f_fall": "Наибольшее снижение: {label} ({pp}).",
        "f_levels": "{specialist} вакансий требуют навыки уровня специалиста; {basic} — не выше базового уровня.",
        "f_low": "Регионов, где меньше {n} вакансий: {count} из {total}; их доли следует читать с осторожностью.",
        "sec_top": "Самые востребованные компетенции",
        "note_top": "Доля вакансий, в которых требуется компетенция (в одной вакансии их может быть несколько).",
        "legend_digcomp": "DigComp 2.2 — цифровые компетенции для всех",
        "legend_ecf": "e-CF 4.0 — компетенции ИКТ-специалистов",
        "legend_low": "менее {n} вакансий",
        "all_competences": "Все компетенции ({n})",
        "sec_change": "Изменение по сравнению с предыдущим месяцем ({month})",
        "note_change": "Наибольшие изменения доли вакансий, требующих компетенцию, в процентных пунктах (п. п.).",
        "no_previous": "Данных за предыдущий месяц нет, поэтому изменения появятся в следующем отчёте.",
        "no_change": "Доли компетенций не изменились.",
        "sec_areas": "Области компетенций",
        "sec_regions": "Области DigComp по регионам",
        "note_regions": "Доля вакансий в регионе, требующих компетенцию из данной области; чем темнее ячейка, тем "
                        "выше доля. Строки с пометкой «< {n}» основаны менее чем на {n} вакансиях и выделены серым.",
        "sec_levels": "Базовый и специализированный уровень",
        "note_levels": "Вакансии по наивысшему уровню владения среди требуемых навыков.",
        "sec_countries": "Спрос по странам",
        "sec_occupations": "Основные профессии",
        "note_occupations": "Профессии — группы классификатора ISCO-08.",
        "sec_method": "Методика и оговорки",
        "m_count": "Вакансия учитывается в месяце публикации. Точные и почти точные повторы учитываются один раз.",
        "m_share": "Доля = вакансии, требующие компетенцию ÷ все вакансии той же группы (месяц, страна или регион). "
                   "Вакансия может требовать несколько компетенций, поэтому сумма долей не равна 100 %.",
        "m_low": "Показатели, основанные менее чем на {n} вакансиях, помечены «< {n}» и выделены серым: не делайте по "
                 "ним далеко идущих выводов.",
        "m_match": "Навыки находятся по названиям из таксономии навыков на английском, русском, украинском, "
                   "румынском и грузинском языках, сопоставленной с DigComp 2.2 и e-CF 4.0. Навыки, которые "
                   "подразумеваются, но не названы в объявлении, не учитываются.",
        "m_files": "Те же таблицы — в CSV-файлах и в report.xlsx рядом с этой страницей; каждое число можно "
                   "проследить до объявлений и предложений в наборах данных Parquet.",
        "mf_sources": "Источники",
        "mf_read": "Вакансии за месяц, включая дубликаты",
        "mf_duplicates": "Исключено дубликатов",
        "mf_dup_rate": "Доля дубликатов",
        "mf_quarantined": "Записей в карантине за запуск (все месяцы)",
        "mf_taxonomy": "Версия таксономии",
        "mf_model": "Версия экстрактора",
        "mf_software": "Программа",
        "mf_run": "Запуск",
        "col_competence": "Компетенция",
        "col_framework": "Рамка",
        "col_ads": "Вакансии",
        "col_share": "Доля",
        "col_change": "Изменение",
        "col_area": "Область",
        "col_region": "Регион",
        "col_country": "Страна",
        "col_with": "С цифровыми навыками",
        "col_any": "Любой цифровой навык",
        "col_top": "Чаще всего требуются",
        "col_level": "Наивысший требуемый уровень",
        "col_occupation": "Профессия",
        "not_stated": "Не указана",
        "region_not_stated": "Регион не указан",
        "low_title": "Менее {n} вакансий",
        "no_skills": "В вакансиях этого месяца цифровые навыки не найдены.",
        "pp": "п. п.",
        "footer": "Подготовлено программой skillpulse {version} по открытым объявлениям о вакансиях.",
        "lvl_basic": "Базовый",
        "lvl_intermediate": "Средний",
        "lvl_advanced": "Продвинутый",
        "lvl_specialist": "Специалист",
        "lvl_unspecified": "Уровень не указан",
        "lvl_none": "Без цифровых навыков",
    },
    "uk": {
        "title": "Попит на цифрові навички у вакансіях",
        "lede": "Оголошень про вакансії за {month}: {ads}. Повторні публікації одного оголошення враховано один раз.",
        "kpi_ads": "Вакансії (без дублікатів)",
        "kpi_share": "Вимагають щонайменше одну цифрову навичку",
        "kpi_specialist": "Вимагають навичок рівня фахівця",
        "kpi_dup": "Частка дублікатів (вилучено)",
        "kpi_quarantine": "Записів у карантині за запуск",
        "kpi_countries": "Країни",
        "vs_previous": "{pp} до попереднього місяця",
        "in_brief": "Коротко",
        "f_share": "{share} вакансій вимагають щонайменше одну цифрову навичку.",
        "f_share_change": "{share} вакансій вимагають щонайменше одну цифрову навичку ({pp} до попереднього місяця).",
        "f_top": "Найзатребуваніша компетентність: {label} ({share} вакансій).",
        "f_rise": "Найбільше зростання: {label} ({pp}).",
        "f_fall": "Найбільше зниження: {label} ({pp}).",
        "f_levels": "{specialist} вакансій вимагають навичок рівня фахівця; {basic} — не вище базового рівня.",
        "f_low": "Регіонів, де менше ніж {n} вакансій: {count} з {total}; їхні частки слід читати обережно.",
        "sec_top": "Найзатребуваніші компетентності",
        "note_top": "Частка вакансій, у яких потрібна компетентність (в одній вакансії їх може бути кілька).",
        "legend_digcomp": "DigComp 2.2 — цифрові компетентності для всіх",
        "legend_ecf": "e-CF 4.0 — компетентності ІКТ-фахівців",
        "legend_low": "менше ніж {n} вакансій",
        "all_competences": "Усі компетентності ({n})",
        "sec_change": "Зміна порівняно з попереднім місяцем ({month})",
        "note_change": "Найбільші зміни частки вакансій, що вимагають компетентності, у відсоткових пунктах (в. п.).",
        "no_previous": "Даних за попередній місяць немає, тому зміни з'являться в наступному звіті.",
        "no_change": "Частки компетентностей не змінилися.",
        "sec_areas": "Сфери компетентностей",
        "sec_regions": "Сфери DigComp за регіонами",
        "note_regions": "Частка вакансій у регіоні, що вимагають компетентності з цієї сфери; що темніша клітинка, "
                        "то вища частка. Рядки з позначкою «< {n}» ґрунтуються на менш ніж {n} вакансіях і виділені "
                        "сірим.",
        "sec_levels": "Базовий і фаховий рівень",
        "note_levels": "Вакансії за найвищим рівнем володіння серед навичок, яких вони вимагають.",
        "sec_countries": "Попит за країнами",
        "sec_occupations": "Основні професії",
        "note_occupations": "Професії — групи класифікатора ISCO-08.",
        "sec_method": "Методика та застереження",
        "m_count": "Вакансія враховується в місяці публікації. Точні й майже точні повтори враховано один раз.",
        "m_share": "Частка = вакансії, що вимагають компетентності ÷ усі вакансії тієї ж групи (місяць, країна або "
                   "регіон). Вакансія може вимагати кількох компетентностей, тому сума часток не дорівнює 100 %.",
        "m_low": "Показники, що ґрунтуються на менш ніж {n} вакансіях, позначено «< {n}» і виділено сірим: не робіть "
                 "із них далекосяжних висновків.",
        "m_match": "Навички знаходимо за назвами з таксономії навичок англійською, російською, українською, "
                   "румунською та грузинською мовами, зіставленої з DigComp 2.2 та e-CF 4.0. Навички, які "
                   "маються на увазі, але не названі в оголошенні, не враховуються.",
        "m_files": "Ті самі таблиці — у CSV-файлах і в report.xlsx поруч із цією сторінкою; кожне число можна "
                   "простежити до оголошень і речень у наборах даних Parquet.",
        "mf_sources": "Джерела",
        "mf_read": "Вакансії за місяць, включно з дублікатами",
        "mf_duplicates": "Вилучено дублікатів",
        "mf_dup_rate": "Частка дублікатів",
        "mf_quarantined": "Записів у карантині за запуск (усі місяці)",
        "mf_taxonomy": "Версія таксономії",
        "mf_model": "Версія екстрактора",
        "mf_software": "Програма",
        "mf_run": "Запуск",
        "col_competence": "Компетентність",
        "col_framework": "Рамка",
        "col_ads": "Вакансії",
        "col_share": "Частка",
        "col_change": "Зміна",
        "col_area": "Сфера",
        "col_region": "Регіон",
        "col_country": "Країна",
        "col_with": "З цифровими навичками",
        "col_any": "Будь-яка цифрова навичка",
        "col_top": "Найчастіше потрібні",
        "col_level": "Найвищий потрібний рівень",
        "col_occupation": "Професія",
        "not_stated": "Не вказано",
        "region_not_stated": "Регіон не вказано",
        "low_title": "Менше ніж {n} вакансій",
        "no_skills": "У вакансіях цього місяця цифрових навичок не знайдено.",
        "pp": "в. п.",
        "footer": "Підготовлено програмою skillpulse {version} на основі відкритих оголошень про вакансії.",
        "lvl_basic": "Базовий",
        "lvl_intermediate": "Середній",
        "lvl_advanced": "Поглиблений",
        "lvl_specialist": "Фахівець",
        "lvl_unspecified": "Рівень не вказано",
        "lvl_none": "Без цифрових навичок",
    },
    "ro": {
        "title": "Cererea de competențe digitale în anunțurile de angajare",
        "lede": "Anunțuri de angajare publicate în {month}: {ads}. Republicările aceluiași anunț sunt numărate o "
                "singură dată.",
        "kpi_ads": "Anunțuri de angajare (fără duplicate)",
        "kpi_share": "Cer cel puțin o competență digitală",
        "kpi_specialist": "Cer competențe de nivel de specialist",
        "kpi_dup": "Rata duplicatelor (eliminate)",
        "kpi_quarantine": "Înregistrări în carantină la rulare",
        "kpi_countries": "Țări",
        "vs_previous": "{pp} față de luna precedentă",
        "in_brief": "Pe scurt",
        "f_share": "{share} dintre anunțuri cer cel puțin o competență digitală.",
        "f_share_change": "{share} dintre anunțuri cer cel puțin o competență digitală ({pp} față de luna "
                          "precedentă).",
        "f_top": "Cea mai cerută competență: {label} ({share} dintre anunțuri).",
        "f_rise": "Cea mai mare creștere: {label} ({pp}).",
        "f_fall": "Cea mai mare scădere: {label} ({pp}).",
        "f_levels": "{specialist} dintre anunțuri cer competențe de nivel de specialist; {basic} cer cel mult "
                    "nivelul de bază.",
        "f_low": "{count} din {total} regiuni au mai puțin de {n} anunțuri: citiți ponderile lor cu prudență.",
        "sec_top": "Cele mai cerute competențe",
        "note_top": "Ponderea anunțurilor care cer fiecare competență (un anunț poate cere mai multe).",
        "legend_digcomp": "DigComp 2.2 — competențe digitale pentru toți",
        "legend_ecf": "e-CF 4.0 — competențe ale specialiștilor TIC",
        "legend_low": "mai puțin de {n} anunțuri",
        "all_competences": "Toate competențele ({n})",
        "sec_change": "Schimbarea față de luna precedentă ({month})",
        "note_change": "Cele mai mari schimbări ale ponderii anunțurilor care cer o competență, în puncte "
                       "procentuale (p.p.).",
        "no_previous": "Nu există date pentru luna precedentă, așa că schimbările vor apărea în raportul următor.",
        "no_change": "Ponderile competențelor nu s-au schimbat.",
        "sec_areas": "Domenii de competențe",
        "sec_regions": "Domeniile DigComp pe regiuni",
        "note_regions": "Ponderea anunțurilor din fiecare regiune care cer o competență din domeniu; celulele mai "
                        "închise indică o pondere mai mare. Rândurile marcate „< {n}” se bazează pe mai puțin de {n} "
                        "anunțuri și sunt afișate cu gri.",
        "sec_levels": "Cerere de bază și de specialitate",
        "note_levels": "Anunțurile după cel mai înalt nivel de competență dintre abilitățile cerute.",
        "sec_countries": "Cererea pe țări",
        "sec_occupations": "Principalele ocupații",
        "note_occupations": "Ocupațiile sunt grupe ISCO-08.",
        "sec_method": "Metodă și precizări",
        "m_count": "Un anunț se numără în luna în care a fost publicat. Duplicatele exacte și aproape exacte se "
                   "numără o singură dată.",
        "m_share": "Pondere = anunțurile care cer o competență ÷ toate anunțurile din același grup (lună, țară sau "
                   "regiune). Un anunț poate cere mai multe competențe, deci ponderile nu însumează 100%.",
        "m_low": "Cifrele bazate pe mai puțin de {n} anunțuri sunt marcate „< {n}” și afișate cu gri: nu trageți "
                 "concluzii ferme din ele.",
        "m_match": "Competențele sunt identificate după denumirile dintr-o taxonomie de competențe în engleză, rusă, "
                   "ucraineană, română și georgiană, corelată cu DigComp 2.2 și e-CF 4.0. Competențele pe care un "
                   "anunț le presupune, dar nu le numește, nu sunt numărate.",
        "m_files": "Aceleași tabele se află în fișierele CSV și în report.xlsx de lângă această pagină; fiecare cifră "
                   "poate fi urmărită până la anunțurile și propozițiile din seturile de date Parquet.",
        "mf_sources": "Surse",
        "mf_read": "Anunțuri din lună, inclusiv duplicate",
        "mf_duplicates": "Duplicate eliminate",
        "mf_dup_rate": "Rata duplicatelor",
        "mf_quarantined": "Înregistrări în carantină la rulare (toate lunile)",
        "mf_taxonomy": "Versiunea taxonomiei",
        "mf_model": "Versiunea extractorului",
        "mf_software": "Software",
        "mf_run": "Rulare",
        "col_competence": "Competență",
        "col_framework": "Cadru",
        "col_ads": "Anunțuri",
        "col_share": "Pondere",
        "col_change": "Schimbare",
        "col_area": "Domeniu",
        "col_region": "Regiune",
        "col_country": "Țară",
        "col_with": "Cu competențe digitale",
        "col_any": "Orice competență digitală",
        "col_top": "Cele mai cerute",
        "col_level": "Cel mai înalt nivel cerut",
        "col_occupation": "Ocupație",
        "not_stated": "Nespecificat",
        "region_not_stated": "Regiune nespecificată",
        "low_title": "Mai puțin de {n} anunțuri",
        "no_skills": "Nu s-a găsit nicio competență digitală în anunțurile din această lună.",
        "pp": "p.p.",
        "footer": "Realizat cu skillpulse {version} din anunțuri de angajare publice.",
        "lvl_basic": "De bază",
        "lvl_intermediate": "Intermediar",
        "lvl_advanced": "Avansat",
        "lvl_specialist": "Specialist",
        "lvl_unspecified": "Nivel nespecificat",
        "lvl_none": "Fără competențe digitale",
    },
}
_COUNTRY_OVERRIDES = {("ru", "MD"): "Молдова"}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"report language must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def tr(lang: str, key: str, **values: Any) -> str:
    """A fixed string of the report in `lang` (English when a key is missing), formatted."""
    text = STRINGS.get(lang, STRINGS["en"]).get(key) or STRINGS["en"][key]
    return text.format(**values) if values else text


def month_label(month: str | None, lang: str = "en") -> str:
    """>>> month_label("2026-09", "ru")
    'сентябрь 2026 г.'
    """
    if not month:
        return ""
    year, mon = month.split("-")
    return _MONTH_FORMAT[lang].format(m=MONTHS[lang][int(mon) - 1], y=year)


def _decimal(text: str, lang: str) -> str:
    return text if lang == "en" else text.replace(".", ",")


def fmt_int(value: Any, lang: str = "en") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{int(value):,}"
    return text.replace(",", {"en": ",", "ro": "."}.get(lang, "\u00a0"))


def fmt_pct(value: Any, lang: str = "en") -> str:
    if value is None or pd.isna(value):
        return "–"
    text = _decimal(f"{100 * float(value):.1f}", lang)
    return text + ("\u00a0%" if lang in ("ru", "uk") else "%")


def fmt_pp(value: Any, lang: str = "en") -> str:
    if value is None or pd.isna(value):
        return "–"
    number = round(float(value), 1)
    sign = "+" if number > 0 else "−" if number < 0 else "±"
    return f"{sign}{_decimal(f'{abs(number):.1f}', lang)}\u00a0{tr(lang, 'pp')}"


@lru_cache(maxsize=16)
def _translations(domain: str, lang: str) -> gettext.NullTranslations:
    import pycountry

    return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[lang], fallback=True)


@lru_cache(maxsize=4096)
def place_name(code: str | None, lang: str = "en") -> str:
    """A readable name for an ISO 3166-1 alpha-2 or 3166-2 code, in `lang` where pycountry has it; else ''."""
    import pycountry

    if not isinstance(code, str) or not code:
        return ""
    try:
        if "-" in code:
            place = pycountry.subdivisions.get(code=code.upper())
            return _translations("iso3166-2", lang).gettext(place.name) if place else ""
        place = pycountry.countries.get(alpha_2=code.upper())
    except (KeyError, LookupError):
        return ""
    if place is None:
        return ""
    if (lang, place.alpha_2) in _COUNTRY_OVERRIDES:
        return _COUNTRY_OVERRIDES[(lang, place.alpha_2)]
    name = getattr(place, "common_name", None) or place.name
    return _translations("iso3166-1", lang).gettext(name)


# --------------------------------------------------------------------------- tables


@dataclass
class ReportData:
    month: str
    previous_month: str | None
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # taxonomy_version, model_version, skillpulse_version, run_id, sources and an optional
    # `run_info` dict (postings, duplicates, duplicate_rate, quarantined) for the method note.
    method: dict[str, Any] = field(default_factory=dict)
    lang: str = "en"


def rollup(demand: pd.DataFrame, level: str, by: list[str]) -> pd.DataFrame:
    """Sum a level's cells over everything but `by`, and recompute the share.

    The denominator is the number of postings in the same group of cells (the
    month's total when `by` holds no cell dimension).
    """
    rows = demand[demand["level"] == level]
    totals = demand[demand["level"] == "total"]
    cell_keys = [k for k in by if k in CELL]
    grouped = (rows.groupby(by, dropna=False)
               .agg(postings_with=("postings_with", "sum"), mentions=("mentions", "sum")).reset_index())
    if cell_keys:
        denom = totals.groupby(cell_keys, dropna=False)["postings_total"].sum().rename("postings_total").reset_index()
        grouped = grouped.merge(denom, on=cell_keys, how="left")
    else:
        grouped["postings_total"] = int(totals["postings_total"].sum())
    grouped["share"] = grouped["postings_with"] / grouped["postings_total"].where(grouped["postings_total"] > 0)
    grouped["low_count"] = grouped["postings_total"] < LOW_COUNT
    return grouped


def _labels(demand: pd.DataFrame, key: str) -> dict[str, str]:
    rows = demand.dropna(subset=[key])
    return dict(zip(rows[key], rows["label"], strict=False))


class _Labeller:
    """Competence and area titles in the report's language (taxonomy labels, else demand's English label)."""

    def __init__(self, demand: pd.DataFrame, taxonomy: Taxonomy | None, lang: str) -> None:
        self.lang, self.taxonomy = lang, taxonomy
        self.english = {**_labels(demand[demand["level"] == "area"], "area_id"), **_labels(demand, "competence_id")}

    def __call__(self, key: Any) -> str:
        if not isinstance(key, str):
            return ""
        comp = self.taxonomy.competences.get(key) if self.taxonomy else None
        if comp is not None:
            return comp.label_in(self.lang)
        return self.english.get(key, key)


def report_tables(month: str, demand: pd.DataFrame, previous: pd.DataFrame | None, *,
                  taxonomy: Taxonomy | None = None, lang: str = "en", proficiency: pd.DataFrame | None = None,
                  previous_month: str | None = None) -> ReportData:
    """Build the report's tables for `month` from its demand rows (and last month's).

    `taxonomy` gives competence and area titles in `lang` (English where a title is
    not translated); `proficiency` is `proficiency_table(...)` for the month.
    """
    lang = check_lang(lang)
    label = _Labeller(demand, taxonomy, lang)
    total = demand[demand["level"] == "total"]
    postings = int(total["postings_total"].sum())
    with_any = int(total["postings_with"].sum())

    comps = rollup(demand, "competence", ["framework", "competence_id"])
    has_previous = previous is not None and len(previous) > 0
    if has_previous:
        assert previous is not None
        prev = rollup(previous, "competence", ["framework", "competence_id"])[["framework", "competence_id", "share"]]
        comps = comps.merge(prev.rename(columns={"share": "share_previous"}), on=["framework", "competence_id"],
                            how="outer")
        # Competences asked for last month but not this month: zero now, and a fall.
        comps = comps.fillna({"postings_with": 0, "mentions": 0, "share": 0.0, "share_previous": 0.0})
        comps["postings_with"] = comps["postings_with"].astype("int64")
        comps["mentions"] = comps["mentions"].astype("int64")
        comps["postings_total"] = postings
        comps["low_count"] = postings < LOW_COUNT
        comps["change_pp"] = (comps["share"] - comps["share_previous"]) * 100
    comps["competence"] = comps["competence_id"].map(label)
    comps = comps.sort_values(["share", "competence_id"], ascending=[False, True])
    front = ["framework", "competence_id", "competence"]
    comps = comps[front + [c for c in comps.columns if c not in front]]

    areas = rollup(demand, "area", ["framework", "area_id"])
    areas["area"] = areas["area_id"].map(label)
    areas = areas.sort_values(["framework", "share", "area_id"], ascending=[True, False, True])
    areas = areas[["framework", "area_id", "area"] + [c for c in areas.columns if c not in ("framework", "area_id",
                                                                                               "area")]]

    summary: dict[str, Any] = {
        "postings": postings,
        "postings_with_digital": with_any,
        "share_digital": (with_any / postings) if postings else 0.0,
        "countries": int(total["country"].nunique(dropna=True)),
    }
    if has_previous:
        assert previous is not None
        prev_total = previous[previous["level"] == "total"]
        prev_postings = int(prev_total["postings_total"].sum())
        summary["share_digital_previous"] = (int(prev_total["postings_with"].sum()) / prev_postings
                                             if prev_postings else 0.0)
        summary["share_digital_change_pp"] = (summary["share_digital"] - summary["share_digital_previous"]) * 100

    data = ReportData(month=month, previous_month=previous_month, summary=summary, lang=lang)
    data.tables = {
        "top_competences": comps[comps["postings_with"] > 0].head(TOP_N).reset_index(drop=True),
        "competences": comps.reset_index(drop=True),
        "areas": areas.reset_index(drop=True),
        "by_region_area": region_areas(demand, label, lang, taxonomy),
        "by_country": _by_country(demand, label, lang),
    }
    if proficiency is not None:
        data.tables["proficiency"] = proficiency.reset_index(drop=True)
        by_level = dict(zip(proficiency["proficiency"], proficiency["share"], strict=False))
        summary["share_specialist"] = float(by_level.get("specialist", 0.0))
    occupations = _occupations(demand)
    if len(occupations):
        data.tables["occupations"] = occupations
    return data


def region_areas(demand: pd.DataFrame, label: Any, lang: str = "en", taxonomy: Taxonomy | None = None,
                 framework: str = REGION_FRAMEWORK) -> pd.DataFrame:
    """Long table: one row per (country, region) × area of `framework`, zeros included.

    `postings_total` counts the region's postings (every cell of the region, any
    occupation); `any_share` is the region's share of postings asking for any digital skill.
    """
    total = demand[demand["level"] == "total"]
    regions = (total.groupby(["country", "region"], dropna=False)
               .agg(postings_total=("postings_total", "sum"), postings_any=("postings_with", "sum")).reset_index())
    if taxonomy is not None:
        area_ids = sorted(a.id for a in taxonomy.areas.values() if a.framework == framework)
    else:
        area_ids = sorted(demand.loc[(demand["level"] == "area") & (demand["framework"] == framework), "area_id"]
                          .dropna().unique())
    columns = ["country", "country_name", "region", "region_name", "area_id", "area", "postings_with",
               "postings_total", "share", "any_share", "low_count"]
    if not len(regions) or not area_ids:
        return pd.DataFrame(columns=columns)
    counts = (demand[(demand["level"] == "area") & (demand["framework"] == framework)]
              .groupby(["country", "region", "area_id"], dropna=False)["postings_with"].sum().reset_index())
    grid = regions.merge(pd.DataFrame({"area_id": area_ids}), how="cross")
    grid = grid.merge(counts, on=["country", "region", "area_id"], how="left")
    grid["postings_with"] = grid["postings_with"].fillna(0).astype("int64")
    grid["share"] = grid["postings_with"] / grid["postings_total"].where(grid["postings_total"] > 0)
    grid["any_share"] = grid["postings_any"] / grid["postings_total"].where(grid["postings_total"] > 0)
    grid["low_count"] = grid["postings_total"] < LOW_COUNT
    grid["area"] = grid["area_id"].map(label)
    grid["country_name"] = [place_name(c, lang) for c in grid["country"]]
    grid["region_name"] = [place_name(r, lang) for r in grid["region"]]
    grid["_size"] = grid.groupby("country", dropna=False)["postings_total"].transform("sum")
    grid = grid.sort_values(["_size", "country", "postings_total", "region", "area_id"],
                            ascending=[False, True, False, True, True], na_position="last")
    return grid[columns].reset_index(drop=True)


def _by_country(demand: pd.DataFrame, label: Any, lang: str = "en") -> pd.DataFrame:
    total = demand[demand["level"] == "total"]
    out = total.groupby("country", dropna=False).agg(postings_total=("postings_total", "sum"),
                                                     postings_with=("postings_with", "sum")).reset_index()
    out["share"] = out["postings_with"] / out["postings_total"]
    comp = demand[demand["level"] == "competence"]
    top = (comp.groupby(["country", "competence_id"], dropna=False)["postings_with"].sum().reset_index())
    top["label"] = top["competence_id"].map(label)
    top = (top.sort_values(["country", "postings_with", "label"], ascending=[True, False, True])
           .groupby("country", dropna=False).head(3))
    tops = top.groupby("country", dropna=False)["label"].apply(lambda s: "; ".join(s)).rename("top_competences")
    out = out.merge(tops.reset_index(), on="country", how="left")
    out["top_competences"] = out["top_competences"].fillna("")
    out["country_name"] = [place_name(c, lang) for c in out["country"]]
    out["country"] = out["country"].fillna("unknown")
    out["low_count"] = out["postings_total"] < LOW_COUNT
    out = out[["country", "country_name", "postings_total", "postings_with", "share", "top_competences", "low_count"]]
    return out.sort_values(["postings_total", "country"], ascending=[False, True]).reset_index(drop=True)


def _occupations(demand: pd.DataFrame) -> pd.DataFrame:
    total = demand[(demand["level"] == "total") & demand["occupation"].notna()]
    if not len(total):
        return pd.DataFrame(columns=["occupation", "postings_total", "postings_with", "share", "low_count"])
    out = total.groupby("occupation").agg(postings_total=("postings_total", "sum"),
                                          postings_with=("postings_with", "sum")).reset_index()
    out["share"] = out["postings_with"] / out["postings_total"]
    out["low_count"] = out["postings_total"] < LOW_COUNT
    return out.sort_values(["postings_total", "occupation"], ascending=[False, True]).head(TOP_N).reset_index(drop=True)


def proficiency_table(mentions: pd.DataFrame, postings: pd.DataFrame) -> pd.DataFrame:
    """Original postings counted by the highest proficiency they ask for.

    Levels rank basic < intermediate < advanced < specialist; a posting whose
    mentions carry no level counts as `unspecified`, one with no mention as `none`.
    Duplicates (`duplicate_of` set) are left out, as in demand/. One row per level in
    `LEVEL_ORDER` (zeros included), with `share` of all original postings.
    """
    columns = ["proficiency", "postings", "postings_total", "share", "low_count"]
    if "duplicate_of" in postings:
        postings = postings[postings["duplicate_of"].isna()]
    ids = pd.Index(postings["posting_id"].dropna().unique())
    rank = {level: i + 1 for i, level in enumerate(PROFICIENCY_LEVELS)}
    found = mentions.loc[mentions["posting_id"].isin(ids), ["posting_id", "proficiency"]]
    best = found.assign(rank=found["proficiency"].map(rank).fillna(0)).groupby("posting_id")["rank"].max()
    names = {0: "unspecified", **{i + 1: level for i, level in enumerate(PROFICIENCY_LEVELS)}}
    levels = best.map(lambda r: names[int(r)])
    counts = levels.value_counts().to_dict()
    counts["none"] = len(ids) - len(best)
    total = len(ids)
    rows = [{"proficiency": lvl, "postings": int(counts.get(lvl, 0)), "postings_total": total,
             "share": (counts.get(lvl, 0) / total) if total else 0.0, "low_count": total < LOW_COUNT}
            for lvl in LEVEL_ORDER]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- CSV / XLSX


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV/XLSX injection).

    >>> safe_cell("=HYPERLINK(1)"), safe_cell("Excel")
    ("'=HYPERLINK(1)", 'Excel')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _plain(value: Any) -> Any:
    """A pandas/numpy scalar as a plain Python value (None for missing)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def write_csv(frame: pd.DataFrame, path: storage.Location) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([safe_cell(str(c)) for c in frame.columns])
        for row in frame.itertuples(index=False):
            writer.writerow(["" if (p := _plain(v)) is None else safe_cell(p) for v in row])
    storage.replace(tmp, path)


def write_xlsx(tables: dict[str, pd.DataFrame], path: storage.Location) -> None:
    """One sheet per table. Text is neutralised (`safe_cell`) and always stored as text, never as a formula."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    header_font, header_fill = Font(bold=True), PatternFill("solid", fgColor="E8EEF7")
    for name, frame in tables.items():
        sheet = book.create_sheet(title=name[:31])
        sheet.append([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False):
            sheet.append([_xlsx_value(v) for v in row])
        for col_idx, column in enumerate(frame.columns, 1):
            letter = get_column_letter(col_idx)
            sheet[f"{letter}1"].font, sheet[f"{letter}1"].fill = header_font, header_fill
            number_format = "0.0%" if column in ("share", "share_previous", "any_share") else (
                "+0.0;-0.0;0.0" if column == "change_pp" else None)
            width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(200)]) + 2
            sheet.column_dimensions[letter].width = min(60, max(8, width))
            for (cell,) in sheet.iter_rows(min_row=2, min_col=col_idx, max_col=col_idx):
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # a string stays a string even if it looks like a formula
                elif number_format and isinstance(cell.value, float):
                    cell.number_format = number_format
        sheet.freeze_panes = "A2"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if storage.is_remote(tmp):
        tmp.write_bytes(storage.to_bytes(book.save))  # openpyxl wants a seekable file
    else:
        book.save(tmp)
    storage.replace(tmp, path)


def _xlsx_value(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, str):
        return safe_cell(_XLSX_ILLEGAL.sub("", value))
    return value


def headline_table(data: ReportData) -> pd.DataFrame:
    """The headline numbers and method facts as a (metric, value) table."""
    run_info = data.method.get("run_info") or {}
    rows: list[tuple[str, Any]] = [("month", data.month), ("previous_month", data.previous_month or ""),
                                   *data.summary.items()]
    rows += [(f"run_{k}", ", ".join(v) if isinstance(v, list | tuple) else v) for k, v in run_info.items()]
    rows += [(k, v) for k, v in data.method.items() if k != "run_info"]
    return pd.DataFrame([(k, _plain(v) if not isinstance(v, list | tuple) else ", ".join(map(str, v)))
                         for k, v in rows], columns=["metric", "value"])


# --------------------------------------------------------------------------- HTML


def _chart_bars(rows: list[dict[str, Any]], lang: str, title: str) -> Markup:
    bars = [charts.Bar(label=str(r["competence"]), value=float(r["share"] or 0.0), text=fmt_pct(r["share"], lang),
                       color=FRAMEWORK_COLORS.get(str(r["framework"]), "#2f6fd6"), muted=bool(r["low_count"]),
                       tooltip=f"{r['competence']} ({FRAMEWORKS.get(str(r['framework']), r['framework'])}): "
                               f"{fmt_pct(r['share'], lang)}, {fmt_int(r['postings_with'], lang)}")
            for r in rows]
    return charts.bar_chart(bars, title)


def _chart_changes(frame: pd.DataFrame, lang: str, title: str) -> tuple[Markup, list[dict[str, Any]]]:
    if "change_pp" not in frame:
        return Markup(""), []
    moved = frame[frame["change_pp"].round(1) != 0]
    rises = moved[moved["change_pp"] > 0].sort_values(["change_pp", "competence_id"], ascending=[False, True])
    falls = moved[moved["change_pp"] < 0].sort_values(["change_pp", "competence_id"], ascending=[True, True])
    half = CHANGES_N // 2
    picked = pd.concat([rises.head(max(half, CHANGES_N - len(falls))), falls.head(max(half, CHANGES_N - len(rises)))])
    picked = picked.sort_values(["change_pp", "competence_id"], ascending=[False, True])
    changes = [charts.Change(label=str(r["competence"]), value=float(r["change_pp"]), text=fmt_pp(r["change_pp"], lang))
               for r in picked.to_dict("records")]
    return charts.change_chart(changes, title), picked.to_dict("records")


def _chart_levels(frame: pd.DataFrame | None, lang: str, title: str) -> Markup:
    if frame is None or not len(frame) or not int(frame["postings"].sum()):
        return Markup("")
    segments = [charts.Segment(label=tr(lang, f"lvl_{r['proficiency']}"), value=float(r["share"]),
                               text=fmt_pct(r["share"], lang), color=LEVEL_COLORS.get(r["proficiency"], "#999"))
                for r in frame.to_dict("records")]
    return charts.stacked_bar(segments, title)


def _region_grid(frame: pd.DataFrame, lang: str) -> dict[str, Any]:
    """The region × area table as header cells and rows with heat-map colours."""
    if not len(frame):
        return {"areas": [], "rows": []}
    areas = frame.drop_duplicates("area_id")[["area_id", "area"]].sort_values("area_id").to_dict("records")
    reliable = frame.loc[~frame["low_count"], "share"]
    top = float(reliable.max()) if len(reliable) and reliable.max() > 0 else 1.0
    rows = []
    for (country, region), group in frame.groupby(["country", "region"], dropna=False, sort=False):
        first = group.iloc[0]
        low = bool(first["low_count"])
        cells = []
        for rec in group.sort_values("area_id").to_dict("records"):
            bg, fg = charts.heat_color(float(rec["share"] or 0.0), top) if not low else ("#f4f5f7", "#8a94a6")
            cells.append({"share": rec["share"], "count": rec["postings_with"], "style": f"background:{bg};color:{fg}"})
        rows.append({"country": country if isinstance(country, str) else "", "country_name": first["country_name"],
                     "region": region if isinstance(region, str) else "", "region_name": first["region_name"],
                     "postings_total": int(first["postings_total"]), "any_share": first["any_share"], "low": low,
                     "cells": cells})
    return {"areas": areas, "rows": rows}


def _findings(data: ReportData, changes: list[dict[str, Any]]) -> list[str]:
    lang, s = data.lang, data.summary
    out = []
    if "share_digital_change_pp" in s:
        out.append(tr(lang, "f_share_change", share=fmt_pct(s["share_digital"], lang),
                      pp=fmt_pp(s["share_digital_change_pp"], lang)))
    else:
        out.append(tr(lang, "f_share", share=fmt_pct(s["share_digital"], lang)))
    top = data.tables.get("top_competences")
    if top is not None and len(top):
        out.append(tr(lang, "f_top", label=top.iloc[0]["competence"], share=fmt_pct(top.iloc[0]["share"], lang)))
    if changes and changes[0]["change_pp"] > 0:
        out.append(tr(lang, "f_rise", label=changes[0]["competence"], pp=fmt_pp(changes[0]["change_pp"], lang)))
    if changes and changes[-1]["change_pp"] < 0:
        out.append(tr(lang, "f_fall", label=changes[-1]["competence"], pp=fmt_pp(changes[-1]["change_pp"], lang)))
    prof = data.tables.get("proficiency")
    if prof is not None and len(prof) and int(prof["postings_total"].iloc[0]):
        by = dict(zip(prof["proficiency"], prof["share"], strict=False))
        out.append(tr(lang, "f_levels", specialist=fmt_pct(by.get("specialist", 0.0), lang),
                      basic=fmt_pct(by.get("basic", 0.0), lang)))
    regions = data.tables.get("by_region_area")
    if regions is not None and len(regions):
        per_region = regions.drop_duplicates(["country", "region"])
        low = int(per_region["low_count"].sum())
        if low:
            out.append(tr(lang, "f_low", count=low, total=len(per_region), n=LOW_COUNT))
    return out


@functools.lru_cache(maxsize=8)
def _template(lang: str) -> Any:
    """The compiled page template for one language (compiling it costs more than rendering)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["pct"] = lambda v: fmt_pct(v, lang)
    env.filters["pp"] = lambda v: fmt_pp(v, lang)
    env.filters["int"] = lambda v: fmt_int(v, lang)
    env.globals["t"] = lambda key, **kw: tr(lang, key, **kw)
    return env.get_template("report.html.j2")


def render_html(data: ReportData) -> str:
    """The report page: one self-contained HTML file (inline CSS and SVG, no scripts, no external resources)."""
    lang = check_lang(data.lang)
    template = _template(lang)
    tables = {name: frame.to_dict("records") for name, frame in data.tables.items()}
    competences = data.tables.get("competences", pd.DataFrame())
    change_svg, changes = _chart_changes(competences, lang, tr(lang, "sec_change", month=month_label(
        data.previous_month, lang)))
    proficiency = data.tables.get("proficiency")
    view = {
        "month_label": month_label(data.month, lang),
        "previous_label": month_label(data.previous_month, lang),
        "findings": _findings(data, changes),
        "top_chart": _chart_bars(tables.get("top_competences", []), lang, tr(lang, "sec_top")),
        "change_chart": change_svg,
        "levels_chart": _chart_levels(proficiency, lang, tr(lang, "sec_levels")),
        "levels": [] if proficiency is None else [
            {**r, "name": tr(lang, f"lvl_{r['proficiency']}")} for r in proficiency.to_dict("records")],
        "region_grid": _region_grid(data.tables.get("by_region_area", pd.DataFrame()), lang),
        "frameworks": FRAMEWORKS,
        "colors": FRAMEWORK_COLORS,
        "run_info": data.method.get("run_info") or {},
        "has_change": "change_pp" in competences,
    }
    return template.render(data=data, tables=tables, low_count=LOW_COUNT, view=view, lang=lang)


def write_report(data: ReportData, folder: storage.Location) -> list[storage.Location]:
    """Write index.html, one CSV per table and report.xlsx into `folder`; return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"headline": headline_table(data), **data.tables}
    html = folder / "index.html"
    tmp = html.with_name(f".index.html.{os.getpid()}.tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    storage.replace(tmp, html)
    written = [html]
    for stale in OPTIONAL_TABLES - set(tables):  # left by an earlier run that had these tables
        (folder / f"{stale}.csv").unlink(missing_ok=True)
    for name, frame in tables.items():
        path = folder / f"{name}.csv"
        write_csv(frame, path)
        written.append(path)
    xlsx = folder / "report.xlsx"
    write_xlsx(tables, xlsx)
    written.append(xlsx)
    return written
