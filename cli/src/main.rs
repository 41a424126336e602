fn main() { println!("{}", pith_core::version()); }
