// FaceAccess console: drag-and-drop uploads with progress, webcam capture, copy buttons. No build step.
(function () {
  "use strict";

  function csrf(form) { return form.querySelector("input[name=csrfmiddlewaretoken]").value; }

  // Re-render the photo grid; it keeps polling by itself while a photo is still being processed.
  function refresh(url) {
    if (window.htmx && url) { window.htmx.ajax("GET", url, { target: "[data-photos]", swap: "outerHTML" }); }
  }

  // What an answer without a JSON body means, in words (a proxy's or the server's own refusal).
  function statusWords(status) {
    if (status === 413) { return "the upload is too large: send fewer or smaller photos (10 MB each at most)"; }
    if (status === 403) { return "your role may not add photos, or your session has ended: reload the page"; }
    if (status === 429) { return "too many uploads at once: wait a moment and try again"; }
    if (status >= 500) { return "the server had a problem storing the photos: try again in a moment"; }
    return "the upload failed (error " + status + "): reload the page and try again";
  }

  function uploadFiles(form, files) {
    var log = form.querySelector("[data-upload-log]");
    var bar = form.querySelector("[data-progress]");
    if (!files.length) { return; }
    var data = new FormData();
    for (var i = 0; i < files.length; i++) { data.append("image", files[i], files[i].name || ("webcam-" + Date.now() + ".jpg")); }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRFToken", csrf(form));
    xhr.setRequestHeader("Accept", "application/json");
    bar.hidden = false; bar.firstElementChild.style.width = "0";
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) { bar.firstElementChild.style.width = Math.round(100 * e.loaded / e.total) + "%"; }
    };
    xhr.onload = function () {
      bar.firstElementChild.style.width = "100%";
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = { stored: [], errors: [{ file: "", detail: statusWords(xhr.status) }] }; }
      log.innerHTML = "";
      if (body.stored && body.stored.length) {
        var ok = document.createElement("li");
        ok.textContent = "✓ " + body.stored.length + " photo(s) stored, enrolling now…";
        log.appendChild(ok);
      }
      (body.errors || []).forEach(function (e) {
        var li = document.createElement("li");
        li.className = "bad";
        li.textContent = "✗ " + (e.file ? e.file + ": " : "") + e.detail;
        log.appendChild(li);
      });
      refresh(form.getAttribute("data-refresh"));
    };
    xhr.onerror = function () { log.textContent = "Upload failed: the server could not be reached."; };
    xhr.send(data);
  }

  function setupDropzone(form) {
    var zone = form.querySelector("[data-dropzone]");
    var input = form.querySelector("[data-files]");
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) { uploadFiles(form, e.dataTransfer.files); });
    input.addEventListener("change", function () { uploadFiles(form, input.files); input.value = ""; });
    setupWebcam(form);
  }

  function setupWebcam(form) {
    var start = form.querySelector("[data-webcam-start]");
    var box = document.querySelector("[data-webcam]");
    if (!start || !box) { return; }
    var video = box.querySelector("video");
    var stream = null;
    function stop() { if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; } box.hidden = true; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      start.disabled = true; start.title = "This browser gives no camera here (the console must be served over HTTPS or from localhost).";
      return;
    }
    start.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 } }).then(function (s) {
        stream = s; video.srcObject = s; box.hidden = false;
      }).catch(function (err) { alert("The camera could not be opened: " + err.message); });
    });
    box.querySelector("[data-webcam-stop]").addEventListener("click", stop);
    box.querySelector("[data-webcam-shoot]").addEventListener("click", function () {
      var canvas = document.createElement("canvas");
      canvas.width = video.videoWidth; canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      canvas.toBlob(function (blob) {
        var file = new File([blob], "webcam-" + Date.now() + ".jpg", { type: "image/jpeg" });
        uploadFiles(form, [file]);
      }, "image/jpeg", 0.92);
    });
  }

  function setupCopy(button) {
    button.addEventListener("click", function () {
      var target = document.querySelector(button.getAttribute("data-copy"));
      var text = target.textContent;
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done); return; }
      var area = document.createElement("textarea"); area.value = text; document.body.appendChild(area);
      area.select(); document.execCommand("copy"); document.body.removeChild(area); done();
    });
  }

  // The lightbox: a link marked data-lightbox opens its full picture (href) with the face boxes drawn over it
  // (the SVG inside the link, cloned) in a modal <dialog>; Esc, the button or a click outside closes it.
  function lightbox() {
    var dialog = document.getElementById("lightbox");
    if (dialog) { return dialog; }
    dialog = document.createElement("dialog");
    dialog.id = "lightbox"; dialog.className = "lightbox"; dialog.setAttribute("aria-label", "Enlarged picture");
    var bar = document.createElement("div"); bar.className = "bar";
    var close = document.createElement("button"); close.type = "button"; close.className = "btn small";
    close.textContent = "Close"; close.addEventListener("click", function () { dialog.close(); });
    bar.appendChild(close); dialog.appendChild(bar);
    var body = document.createElement("div"); body.setAttribute("data-lightbox-body", ""); dialog.appendChild(body);
    dialog.addEventListener("click", function (e) { if (e.target === dialog) { dialog.close(); } });
    document.body.appendChild(dialog);
    return dialog;
  }

  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a[data-lightbox]") : null;
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey || typeof HTMLDialogElement === "undefined") { return; }
    e.preventDefault();
    var dialog = lightbox();
    var body = dialog.querySelector("[data-lightbox-body]");
    body.textContent = "";
    var shot = document.createElement("div"); shot.className = "shot";
    var img = document.createElement("img"); img.src = link.getAttribute("href");
    var small = link.querySelector("img"); img.alt = small ? small.alt : "";
    shot.appendChild(img);
    var boxes = link.querySelector("svg"); if (boxes) { shot.appendChild(boxes.cloneNode(true)); }
    body.appendChild(shot);
    dialog.showModal();
  });

  // Forms that ask first (data-confirm="question"): the console's CSP forbids inline onsubmit handlers, so one
  // listener on the document asks for every such form, including those htmx swaps in later.
  document.addEventListener("submit", function (e) {
    var by = e.submitter && e.submitter.getAttribute("data-confirm");  // a button of the form may ask instead
    var question = by || (e.target.getAttribute && e.target.getAttribute("data-confirm"));
    if (question && !window.confirm(question)) { e.preventDefault(); e.stopImmediatePropagation(); }
  }, true);

  // Keyboard shortcuts of the review flow: a key pressed outside a text field clicks the [data-key] element
  // that names it (c confirm, n not X, u undo, j next unreviewed); the confirmation of "not X" still asks.
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) { return; }
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) { return; }
    var target = document.querySelector('[data-key="' + e.key + '"]');
    if (target) { e.preventDefault(); target.click(); }
  });

  // A searchable person picker: typing in [data-filter-select] narrows the options of the <select> it names and
  // selects the first one left.
  function setupFilterSelect(input) {
    var select = document.querySelector(input.getAttribute("data-filter-select"));
    if (!select) { return; }
    input.addEventListener("input", function () {
      var words = input.value.trim().toLowerCase(), first = null;
      Array.prototype.forEach.call(select.options, function (o) {
        var keep = !o.value || o.textContent.toLowerCase().indexOf(words) !== -1;
        o.hidden = !keep; o.disabled = !keep;
        if (keep && o.value && first === null) { first = o; }
      });
      if (first && words) { select.value = first.value; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-filter-select]").forEach(setupFilterSelect);
    var form = document.getElementById("upload");
    if (form) { setupDropzone(form); }
    document.querySelectorAll("[data-copy]").forEach(setupCopy);
  });
})();
