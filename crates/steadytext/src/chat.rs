//! Rendering a prompt through the model's own chat template, as SteadyText does
//! (`create_chat_completion` with one user message and no system prompt).
//!
//! The template is the GGUF's Jinja text, rendered with minijinja the way Hugging Face renders it
//! (trim_blocks, lstrip_blocks, Python string methods), so a model that injects a default system
//! prompt (SmolLM2 does) gets it, exactly as with llama-cpp-python.

use minijinja::{context, Environment, Error, ErrorKind};

/// Renders `template` for one user message, ending with the assistant's turn opened.
pub fn render(
    template: &str,
    prompt: &str,
    bos_token: &str,
    eos_token: &str,
) -> Result<String, Error> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    // Templates that print today's date would make output depend on the day: pin it.
    env.add_function("strftime_now", |_format: String| "26 Jul 2024".to_string());
    env.add_template("chat", template)?;
    env.get_template("chat")?.render(context! {
        messages => vec![context! { role => "user", content => prompt }],
        add_generation_prompt => true,
        bos_token => bos_token,
        eos_token => eos_token,
    })
}

/// ChatML, for models that ship no template.
pub fn chatml(prompt: &str) -> String {
    format!("<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN_LIKE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_one_user_message() {
        assert_eq!(render(QWEN_LIKE, "Hi", "", "").unwrap(), chatml("Hi"));
    }

    #[test]
    fn python_string_methods_work() {
        let t = "{{ messages[0]['content'].strip().upper() }}";
        assert_eq!(render(t, "  hi ", "", "").unwrap(), "HI");
    }

    #[test]
    fn raise_exception_is_an_error() {
        assert!(render("{{ raise_exception('no') }}", "x", "", "").is_err());
    }
}
